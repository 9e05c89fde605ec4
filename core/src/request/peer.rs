//! The downstream peer's certificate identities (URI SAN, DNS SAN, subject), built only from
//! the connection, in the order Envoy's `authenticated` matcher tries them.

use std::cell::OnceCell;

/// What the downstream certificate says about the peer. Built only from the connection.
///
/// Envoy's `authenticated` matcher tries the URI SAN, then the DNS SAN, then the subject. In
/// Envoy each is a property read (~1 us); a peer built with [`Peer::lazy`] reads the DNS SAN
/// and subject only when the URI SAN did not decide.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub uri_san: Option<Vec<u8>>,
    fallbacks: OnceCell<Fallbacks>,
    load_fallbacks: Option<fn() -> Fallbacks>,
}

/// Equal when every identity is (loading the lazy ones).
impl PartialEq for Peer {
    fn eq(&self, other: &Peer) -> bool {
        self.uri_san == other.uri_san && self.fallbacks() == other.fallbacks()
    }
}

impl Eq for Peer {}

/// The DNS SAN and the subject.
pub type Fallbacks = (Option<Vec<u8>>, Option<Vec<u8>>);

impl Peer {
    /// A peer with every identity known.
    pub fn new(
        uri_san: Option<Vec<u8>>,
        dns_san: Option<Vec<u8>>,
        subject: Option<Vec<u8>>,
    ) -> Peer {
        Peer {
            uri_san,
            fallbacks: OnceCell::from((dns_san, subject)),
            load_fallbacks: None,
        }
    }

    /// A peer whose DNS SAN and subject are read by `load` when first needed.
    pub fn lazy(uri_san: Option<Vec<u8>>, load: fn() -> Fallbacks) -> Peer {
        Peer {
            uri_san,
            fallbacks: OnceCell::new(),
            load_fallbacks: Some(load),
        }
    }

    pub fn dns_san(&self) -> Option<&[u8]> {
        self.fallbacks().0.as_deref()
    }

    pub fn subject(&self) -> Option<&[u8]> {
        self.fallbacks().1.as_deref()
    }

    fn fallbacks(&self) -> &Fallbacks {
        self.fallbacks
            .get_or_init(|| self.load_fallbacks.map(|load| load()).unwrap_or_default())
    }

    /// The identity strings Envoy's `authenticated` matcher tries, in its order; the DNS SAN
    /// and subject are loaded only if the caller asks past the URI SAN.
    pub fn candidates(&self) -> impl Iterator<Item = &[u8]> {
        self.uri_san.as_deref().into_iter().chain(
            std::iter::once_with(move || [self.dns_san(), self.subject()])
                .flatten()
                .flatten(),
        )
    }
}
