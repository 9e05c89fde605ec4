//! The decision procedure: the compiled policies that apply to this workload, evaluated per
//! request exactly as Istio's RBAC filters order them.
//!
//! 1. An enforced DENY rule matches: deny.
//! 2. At least one enforced ALLOW policy applies (even one with no rules): allow only if some
//!    ALLOW rule matches, else deny ("deny by default" exists only once an ALLOW exists).
//! 3. Otherwise allow.
//!
//! AUDIT rules and dry-run (`istio.io/dry-run`) policies are evaluated alongside, like Envoy's
//! shadow engines, and reported; they never change the decision. As istiod builds one RBAC
//! filter per action, each with its own shadow engine, the dry-run DENY, dry-run ALLOW and
//! dry-run AUDIT sets are evaluated separately ([`Shadows`]); within a set the reported rule is
//! the first matching one by name, as Envoy's engine walks its policies in name order.
//!
//! Rules are evaluated with three-valued logic: when an attribute cannot be determined (the
//! physical peer address behind a trusted X-Forwarded-For), a DENY or AUDIT rule that might
//! match is taken as matching and an ALLOW rule that might match is not. Unknowns fail closed.

use crate::authn::authenticator::Authenticator;
use crate::authorization::authorization_policy::{Action, CompiledPolicy, CompiledRule};
use crate::authorization::deny_response::DenyResponse;
use crate::authorization::rule_explanation::{explain_parts, matched_parts, PartOutcome};
use crate::authorization::rule_id::RuleId;
use crate::egress::sidecar::{resolve, Egress};
use crate::matchers::predicate::{Subject, Tri};
use crate::matchers::rule_index::{RuleIndex, MIN_RULES_TO_INDEX};
use crate::matchers::sort_order::{first_appearances, sort_by_bytes};
use crate::mtls::peer_authentication::{Mode, MtlsPolicy};
use crate::plugin::settings::Settings;
use crate::request::request_view::{Connection, Headers};
use crate::request::verified_claims::Claims;

#[derive(Debug, Clone, Default)]
struct RuleSet {
    rules: Vec<CompiledRule>,
    /// A policy of this kind applies, even if it has no rules (an ALLOW `spec: {}`).
    present: bool,
    /// Candidate lookup, for sets large enough to benefit.
    index: Option<RuleIndex>,
}

impl RuleSet {
    /// The first rule that certainly matches (ALLOW semantics: unknown is not enough).
    fn first_match(&self, s: &Subject<'_>) -> Option<&RuleId> {
        self.first_where(s, |t| t == Tri::True)
    }

    /// The first rule that matches or might match (DENY semantics: unknown denies).
    fn first_possible_match(&self, s: &Subject<'_>) -> Option<&RuleId> {
        self.first_where(s, |t| t != Tri::False)
    }

    fn first_where(&self, s: &Subject<'_>, accept: impl Fn(Tri) -> bool) -> Option<&RuleId> {
        let Some(index) = &self.index else {
            return self
                .rules
                .iter()
                .find(|r| accept(r.predicate.eval(s)))
                .map(|r| &r.id);
        };
        let mut candidates = Vec::new();
        index.candidates(s, &mut candidates);
        candidates
            .iter()
            .filter_map(|i| self.rules.get(*i as usize))
            .find(|r| accept(r.predicate.eval(s)))
            .map(|r| &r.id)
    }

    fn build_index(&mut self) {
        if self.rules.len() >= MIN_RULES_TO_INDEX {
            self.index = Some(RuleIndex::build(self.rules.iter().map(|r| &r.predicate)));
        }
    }

    fn add(&mut self, policy: CompiledPolicy) {
        self.present = true;
        self.rules.extend(policy.rules);
    }
}

/// The compiled policies for one workload.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    authenticator: Authenticator,
    /// SuperGloo SecurityRules enforced as their own layer when AuthorizationPolicies also
    /// apply (otherwise they are part of the legacy RBAC ALLOW set).
    security_layer: RuleSet,
    mtls: MtlsPolicy,
    egress: Option<Egress>,
    workload_namespace: String,
    deny: RuleSet,
    allow: RuleSet,
    audit: RuleSet,
    dry_run_deny: RuleSet,
    dry_run_allow: RuleSet,
    /// Dry-run AUDIT policies: istiod puts them in the LOG filter's shadow rules, which
    /// report a match but never set the access-log hint.
    dry_run_audit: RuleSet,
    settings: Settings,
    /// The first rule of each distinct policy behind the rules (set, as in [`Engine::sets`],
    /// and position), in numbering order; a rule's [`RuleId::policy_index`] points here
    /// (per-policy counters).
    policy_first_rules: Vec<(u8, u32)>,
    /// The `meshguard.io/deny-*` reply of each policy, by [`RuleId::policy_index`] (boxed:
    /// few policies have one).
    deny_responses: Vec<Option<Box<DenyResponse>>>,
}

/// The enforced, dry-run and audit rule sets of the numbering ([`Engine::sets`]).
const SETS: usize = 6;

/// The position in [`Engine::sets`] of the rules of one action; `None` for CUSTOM.
fn set_slot(action: Action, dry_run: bool) -> Option<usize> {
    match (action, dry_run) {
        (Action::Deny, false) => Some(0),
        (Action::Allow, false) => Some(1),
        (Action::Audit, false) => Some(2),
        (Action::Deny, true) => Some(3),
        (Action::Allow, true) => Some(4),
        (Action::Audit, true) => Some(5),
        (Action::Custom, _) => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

/// What the dry-run policies would have done if enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun<'e> {
    /// No dry-run policy applies.
    None,
    /// A dry-run DENY rule matched.
    WouldDeny(&'e str),
    /// Dry-run ALLOW policies apply and none matched.
    WouldDenyNoAllowMatched,
    /// Dry-run policies apply and would allow (the matched dry-run ALLOW rule, if any).
    WouldAllow(Option<&'e str>),
}

/// One request's decision and the rules that explain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'e> {
    pub verdict: Verdict,
    /// The rule that decided: the matched DENY rule, or the matched ALLOW rule. `None` when
    /// no policy applies, or when ALLOW policies exist and none matched.
    pub policy: Option<&'e str>,
    /// The first AUDIT rule that matched.
    pub audit: Option<&'e str>,
    pub dry_run: DryRun<'e>,
    /// Each shadow engine's result, as Envoy's RBAC filters report them.
    pub shadows: Shadows<'e>,
    /// AUDIT policies apply (Envoy then sets the access-log hint, `true` when one matched).
    pub audit_applies: bool,
    pub reason: Reason,
    /// The same rules, typed (for per-policy counters).
    pub matched: MatchedRules<'e>,
}

/// One shadow engine's result (Envoy `shadow_engine_result` and
/// `shadow_effective_policy_id`): whether the shadow rules would let the request through, and
/// the rule that matched, if one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shadow<'e> {
    pub allowed: bool,
    pub rule: Option<&'e RuleId>,
}

/// The shadow engines of the RBAC filters istiod generates, each `Some` only when dry-run
/// policies of that action apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shadows<'e> {
    /// The DENY filter's: denied when a dry-run DENY rule matches.
    pub deny: Option<Shadow<'e>>,
    /// The ALLOW filter's: allowed when a dry-run ALLOW rule matches.
    pub allow: Option<Shadow<'e>>,
    /// The AUDIT (LOG) filter's: always allowed, with the matched rule.
    pub audit: Option<Shadow<'e>>,
}

/// The rules behind a [`Decision`], with their policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchedRules<'e> {
    /// The rule that decided.
    pub decided: Option<&'e RuleId>,
    pub audit: Option<&'e RuleId>,
    /// The dry-run DENY rule that matched.
    pub dry_run_deny: Option<&'e RuleId>,
}

/// Why a [`Decision`] came out as it did, part by part ([`Engine::explain`]).
#[derive(Debug, Clone)]
pub struct Explanation<'e> {
    /// The deciding rule (a DENY or ALLOW rule that matched) and its parts.
    pub decided: Option<RuleExplanation<'e>>,
    /// For a default deny (ALLOW policies apply, none matched): the ALLOW rule with the most
    /// matching parts (the first of equals), whose failing parts say what was missing.
    pub closest_allow: Option<RuleExplanation<'e>>,
}

/// One rule's parts and their results for the request.
#[derive(Debug, Clone)]
pub struct RuleExplanation<'e> {
    pub rule: &'e str,
    pub parts: Vec<PartOutcome<'e>>,
}

/// Why the decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Authorization policies (or their absence) decided.
    Policy,
    /// A STRICT PeerAuthentication applies and the request came without a client certificate.
    MtlsRequired,
}

/// A connection whose TLS identity is ignored (PeerAuthentication DISABLE: Istio terminates no
/// TLS there, so no principal exists).
struct NoPeer<'a>(&'a dyn Connection);

impl Connection for NoPeer<'_> {
    fn peer(&self) -> Option<&crate::request::peer::Peer> {
        None
    }
    fn source_ip(&self) -> Result<Option<std::net::IpAddr>, crate::request::request_view::Unknown> {
        self.0.source_ip()
    }
    fn remote_ip(&self) -> Option<std::net::IpAddr> {
        self.0.remote_ip()
    }
    fn destination_ip(&self) -> Option<std::net::IpAddr> {
        self.0.destination_ip()
    }
    fn destination_port(&self) -> Option<u16> {
        self.0.destination_port()
    }
    fn sni(&self) -> Option<&[u8]> {
        self.0.sni()
    }
    fn metadata(
        &self,
        filter: &str,
        key: &str,
    ) -> Option<crate::request::request_view::MetadataValue> {
        self.0.metadata(filter, key)
    }
}

impl Decision<'_> {
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// `allow <id>|none` / `deny <id>|none`, for logs, filter state and the decision header.
    pub fn summary(&self) -> String {
        let verdict = match self.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        };
        format!("{verdict} {}", self.policy.unwrap_or("none"))
    }
}

impl Engine {
    // Its steps are functions of their own, never inlined here: V8 compiles the whole module at
    // load with its optimizing compiler, and the memory it leaves behind grows with the largest
    // function (README, "What sets the memory at rest").
    pub fn new(
        policies: Vec<CompiledPolicy>,
        authenticator: Authenticator,
        settings: Settings,
    ) -> Engine {
        let mut engine = Engine {
            authenticator,
            settings,
            ..Engine::default()
        };
        let custom_replies = engine.add_policies(policies);
        // Envoy's RBAC engine checks its policies in name order; the reported rule of a
        // reporting-only set is the first matching one by name (enforced sets keep
        // configuration order, which only picks the `meshguard.io/deny-*` reply).
        for set in [
            &mut engine.audit,
            &mut engine.dry_run_deny,
            &mut engine.dry_run_allow,
            &mut engine.dry_run_audit,
        ] {
            sort_by_bytes(&mut set.rules, |r| r.id.as_str().as_bytes());
        }
        for set in engine.sets_mut() {
            set.build_index();
        }
        engine.number_policies(custom_replies);
        engine
    }

    /// Puts each policy's rules into the set of its action, and returns the
    /// `meshguard.io/deny-*` replies by policy name.
    #[inline(never)]
    fn add_policies(&mut self, policies: Vec<CompiledPolicy>) -> Vec<(Box<str>, DenyResponse)> {
        // Each set's rules are allocated once at their exact size: no doubling and no copy on
        // growth at the load peak (Wasm memory never shrinks below it).
        let mut wanted = [0usize; SETS];
        for policy in &policies {
            if let Some(n) = set_slot(policy.action, policy.dry_run).and_then(|k| wanted.get_mut(k))
            {
                *n += policy.rules.len();
            }
        }
        for (set, n) in self.sets_mut().into_iter().zip(wanted) {
            set.rules.reserve_exact(n);
        }
        let mut custom_replies: Vec<(Box<str>, DenyResponse)> = Vec::new();
        for mut policy in policies {
            if let (Some(reply), Some(rule)) = (policy.deny_response.take(), policy.rules.first()) {
                custom_replies.push((rule.id.policy().into(), reply));
            }
            // Custom is rejected at load; nothing to evaluate.
            let Some(k) = set_slot(policy.action, policy.dry_run) else {
                continue;
            };
            if let Some(set) = self.sets_mut().into_iter().nth(k) {
                set.add(policy);
            }
        }
        custom_replies
    }

    /// Numbers the policies by first appearance (a policy's name is the policy part of its
    /// first rule's id: no copy of the text is kept), gives each rule its policy's number, and
    /// files the `meshguard.io/deny-*` replies under it.
    #[inline(never)]
    fn number_policies(&mut self, custom_replies: Vec<(Box<str>, DenyResponse)>) {
        // Every rule's policy name in numbering order, then each custom reply's policy name;
        // equal names share the position of the name's first appearance (a sort, not a hash
        // map keyed by `&str`: one table type less in the module).
        let mut names: Vec<&[u8]> = Vec::new();
        let mut places: Vec<(u8, u32)> = Vec::new();
        for (k, set) in self.sets().into_iter().enumerate() {
            for (j, rule) in set.rules.iter().enumerate() {
                names.push(rule.id.policy().as_bytes());
                places.push((
                    u8::try_from(k).unwrap_or(u8::MAX),
                    u32::try_from(j).unwrap_or(u32::MAX),
                ));
            }
        }
        let rules = names.len();
        names.extend(custom_replies.iter().map(|(policy, _)| policy.as_bytes()));
        let first = first_appearances(names);
        let mut first_rules: Vec<(u8, u32)> = Vec::new();
        let mut numbers: Vec<u32> = Vec::with_capacity(rules);
        for (pos, (&first, place)) in first.iter().zip(places).enumerate() {
            let number = if first == pos {
                first_rules.push(place);
                u32::try_from(first_rules.len() - 1).unwrap_or(u32::MAX)
            } else {
                numbers.get(first).copied().unwrap_or(u32::MAX)
            };
            numbers.push(number);
        }
        let mut deny_responses: Vec<Option<Box<DenyResponse>>> = Vec::new();
        deny_responses.resize_with(first_rules.len(), || None);
        let reply_firsts = first.get(rules..).unwrap_or_default();
        for (&first, (_, reply)) in reply_firsts.iter().zip(custom_replies) {
            if let Some(slot) = numbers
                .get(first)
                .and_then(|&n| deny_responses.get_mut(n as usize))
            {
                *slot = Some(Box::new(reply));
            }
        }
        self.deny_responses = deny_responses;
        let all_rules = self
            .sets_mut()
            .into_iter()
            .flat_map(|set| set.rules.iter_mut());
        for (rule, number) in all_rules.zip(numbers) {
            rule.id.set_policy_index(number);
        }
        first_rules.shrink_to_fit();
        self.policy_first_rules = first_rules;
    }

    /// The rule sets numbered for [`Engine::policy_names`], in policy numbering order.
    fn sets(&self) -> [&RuleSet; SETS] {
        [
            &self.deny,
            &self.allow,
            &self.audit,
            &self.dry_run_deny,
            &self.dry_run_allow,
            &self.dry_run_audit,
        ]
    }

    fn sets_mut(&mut self) -> [&mut RuleSet; SETS] {
        [
            &mut self.deny,
            &mut self.allow,
            &mut self.audit,
            &mut self.dry_run_deny,
            &mut self.dry_run_allow,
            &mut self.dry_run_audit,
        ]
    }

    /// The reply to an authorization denial: the deciding DENY rule's policy's
    /// `meshguard.io/deny-*` reply, else the plugin's `denyResponse` (Envoy RBAC's 403 by
    /// default). With several matching DENY rules the first in evaluation order decided.
    pub fn deny_response(&self, decision: &Decision<'_>) -> &DenyResponse {
        decision
            .matched
            .decided
            .filter(|_| decision.verdict == Verdict::Deny)
            .and_then(|rule| self.deny_responses.get(rule.policy_index() as usize))
            .and_then(|reply| reply.as_deref())
            .unwrap_or(&self.settings.deny_response)
    }

    /// Sets the composed PeerAuthentication mode.
    pub fn with_mtls(mut self, mtls: MtlsPolicy) -> Engine {
        self.mtls = mtls;
        self
    }

    /// Enforces SecurityRules as a separate whitelist layer.
    pub fn with_security_layer(mut self, rules: Option<Vec<CompiledRule>>) -> Engine {
        if let Some(rules) = rules {
            self.security_layer = RuleSet {
                rules,
                present: true,
                index: None,
            };
            self.security_layer.build_index();
        }
        self
    }

    /// Sets the Sidecar egress rules in force (outbound side).
    pub fn with_egress(mut self, egress: Option<Egress>, workload_namespace: &str) -> Engine {
        self.egress = egress;
        self.workload_namespace = workload_namespace.to_string();
        self
    }

    /// True when a Sidecar with REGISTRY_ONLY egress applies (the filter must know whether it
    /// runs on the outbound side).
    pub fn has_egress_rules(&self) -> bool {
        self.egress.as_ref().is_some_and(|e| e.registry_only)
    }

    /// On the outbound side: `Some((fqdn, sidecar))` when the called host is not in the
    /// Sidecar's egress list.
    pub fn egress_violation(
        &self,
        headers: Headers<'_>,
        connection: &dyn Connection,
    ) -> Option<(String, &str)> {
        let egress = self.egress.as_ref()?;
        let authority = headers
            .first(":authority")
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let port = connection.destination_port();
        if egress.allows(&authority, &self.workload_namespace, port) {
            return None;
        }
        let (fqdn, _) = resolve(&authority, &self.workload_namespace);
        Some((fqdn, egress.sidecar.as_str()))
    }

    /// The PeerAuthentication that requires mTLS, when this request arrived without it.
    pub fn mtls_violation(&self, connection: &dyn Connection) -> Option<&str> {
        if !self.mtls.needs_connection() {
            return None;
        }
        let strict = self.mtls.mode(connection.destination_port()) == Mode::Strict;
        (strict && connection.peer().is_none()).then_some(self.mtls.source.as_str())
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The JWT providers of the applicable RequestAuthentications.
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// The distinct policies behind the rules, in rule order, for per-policy counters; a
    /// rule's [`RuleId::policy_index`] is its position here.
    pub fn policy_names(&self) -> impl ExactSizeIterator<Item = &str> {
        let sets = self.sets();
        self.policy_first_rules.iter().map(move |(k, j)| {
            sets.get(usize::from(*k))
                .and_then(|set| set.rules.get(*j as usize))
                .map_or("", |rule| rule.id.policy())
        })
    }

    /// Number of enforced, dry-run and audit rules, for the start-up log line.
    pub fn rule_count(&self) -> usize {
        self.sets().iter().map(|s| s.rules.len()).sum()
    }

    /// Decides one request that carries no verified end-user token.
    pub fn decide<'e>(&'e self, headers: Headers<'_>, connection: &dyn Connection) -> Decision<'e> {
        self.decide_with_claims(headers, connection, None)
    }

    /// Decides one request; `claims` is the verified JWT, if authentication produced one.
    pub fn decide_with_claims<'e>(
        &'e self,
        headers: Headers<'_>,
        connection: &dyn Connection,
        claims: Option<&Claims>,
    ) -> Decision<'e> {
        if let Some(source) = self.mtls_violation(connection) {
            return Decision {
                verdict: Verdict::Deny,
                policy: Some(source),
                audit: None,
                dry_run: DryRun::None,
                shadows: Shadows::default(),
                audit_applies: false,
                reason: Reason::MtlsRequired,
                matched: MatchedRules::default(),
            };
        }
        self.with_subject(headers, connection, claims, |subject| {
            self.decide_policies(subject)
        })
    }

    /// The AuthorizationPolicy, SecurityRule, AUDIT and dry-run layers for one subject.
    fn decide_policies<'e>(&'e self, subject: &Subject<'_>) -> Decision<'e> {
        let (verdict, policy) = if let Some(id) = self.deny.first_possible_match(subject) {
            (Verdict::Deny, Some(id))
        } else if self.allow.present {
            match self.allow.first_match(subject) {
                Some(id) => (Verdict::Allow, Some(id)),
                None => (Verdict::Deny, None),
            }
        } else {
            (Verdict::Allow, None)
        };
        // SecurityRules as their own layer: a request they do not whitelist is denied even
        // when the AuthorizationPolicies allow it.
        let (verdict, policy) = if verdict == Verdict::Allow
            && self.security_layer.present
            && self.security_layer.first_match(subject).is_none()
        {
            (Verdict::Deny, None)
        } else {
            (verdict, policy)
        };
        let audit = if self.audit.present {
            self.audit.first_possible_match(subject)
        } else {
            None
        };
        let shadows = self.shadows(subject);
        let dry_run_deny = shadows.deny.and_then(|s| s.rule);
        Decision {
            verdict,
            policy: policy.map(RuleId::as_str),
            audit: audit.map(RuleId::as_str),
            dry_run: shadows.dry_run(),
            shadows,
            audit_applies: self.audit.present,
            reason: Reason::Policy,
            matched: MatchedRules {
                decided: policy,
                audit,
                dry_run_deny,
            },
        }
    }

    /// Runs `f` on the request as the policies see it: under PeerAuthentication DISABLE the
    /// connection's TLS identity is not seen. Shared by [`Engine::decide_with_claims`] and
    /// [`Engine::explain`], so an explanation evaluates what the decision evaluated.
    fn with_subject<R>(
        &self,
        headers: Headers<'_>,
        connection: &dyn Connection,
        claims: Option<&Claims>,
        f: impl FnOnce(&Subject<'_>) -> R,
    ) -> R {
        let without_peer = (self.mtls.needs_connection()
            && self.mtls.mode(connection.destination_port()) == Mode::Disable)
            .then_some(NoPeer(connection));
        let connection: &dyn Connection = match &without_peer {
            Some(view) => view,
            None => connection,
        };
        f(&Subject {
            headers,
            connection,
            claims,
        })
    }

    /// Explains `decision` (taken by [`Engine::decide_with_claims`] for the same request):
    /// evaluates the parts of the deciding rule, or of every ALLOW rule for a default deny,
    /// with the same predicates and the same connection view the decision used. Not on the
    /// request path (the CLI calls it).
    pub fn explain<'e>(
        &'e self,
        decision: &Decision<'e>,
        headers: Headers<'_>,
        connection: &dyn Connection,
        claims: Option<&Claims>,
    ) -> Explanation<'e> {
        self.with_subject(headers, connection, claims, |subject| {
            self.explain_subject(decision, subject)
        })
    }

    fn explain_subject<'e>(
        &'e self,
        decision: &Decision<'e>,
        subject: &Subject<'_>,
    ) -> Explanation<'e> {
        let sets = [&self.deny, &self.allow, &self.security_layer];
        let explain = |rule: &'e CompiledRule| RuleExplanation {
            rule: rule.id.as_str(),
            parts: explain_parts(&rule.predicate, &rule.parts, subject),
        };
        let decided = decision.matched.decided.and_then(|id| {
            sets.iter()
                .flat_map(|set| set.rules.iter())
                .find(|r| std::ptr::eq(&r.id, id))
                .map(explain)
        });
        let default_deny = decision.verdict == Verdict::Deny
            && decision.reason == Reason::Policy
            && decision.matched.decided.is_none();
        let closest_allow = if default_deny {
            let mut best: Option<RuleExplanation<'e>> = None;
            for rule in &self.allow.rules {
                let candidate = explain(rule);
                let better = best
                    .as_ref()
                    .is_none_or(|b| matched_parts(&candidate.parts) > matched_parts(&b.parts));
                if better {
                    best = Some(candidate);
                }
            }
            best
        } else {
            None
        };
        Explanation {
            decided,
            closest_allow,
        }
    }

    /// Runs each shadow engine that has policies; cost nothing without dry-run policies.
    fn shadows<'e>(&'e self, subject: &Subject<'_>) -> Shadows<'e> {
        if !(self.dry_run_deny.present || self.dry_run_allow.present || self.dry_run_audit.present)
        {
            return Shadows::default();
        }
        let run = |set: &'e RuleSet, allowed: fn(bool) -> bool, deny_semantics: bool| {
            set.present.then(|| {
                let rule = if deny_semantics {
                    set.first_possible_match(subject)
                } else {
                    set.first_match(subject)
                };
                Shadow {
                    allowed: allowed(rule.is_some()),
                    rule,
                }
            })
        };
        Shadows {
            deny: run(&self.dry_run_deny, |matched| !matched, true),
            allow: run(&self.dry_run_allow, |matched| matched, false),
            audit: run(&self.dry_run_audit, |_| true, true),
        }
    }
}

impl<'e> Shadows<'e> {
    /// The combined dry-run outcome of the DENY and ALLOW shadows (DENY first).
    pub fn dry_run(&self) -> DryRun<'e> {
        match (self.deny, self.allow) {
            (None, None) => DryRun::None,
            (Some(Shadow { rule: Some(id), .. }), _) => DryRun::WouldDeny(id.as_str()),
            (_, Some(Shadow { rule: Some(id), .. })) => DryRun::WouldAllow(Some(id.as_str())),
            (_, Some(Shadow { rule: None, .. })) => DryRun::WouldDenyNoAllowMatched,
            (Some(_), None) => DryRun::WouldAllow(None),
        }
    }
}
