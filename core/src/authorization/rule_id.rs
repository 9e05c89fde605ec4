//! The id of one compiled rule, built from its typed parts, as Istio names the RBAC policies it
//! generates (`ns[NS]-policy[NAME]-rule[IDX]` for an AuthorizationPolicy rule). The id knows
//! which part names the policy, so per-policy counters never parse it back; the engine gives
//! every policy a dense index at load ([`RuleId::policy_index`]).

/// A rule's id: the text shown in logs, filter state and the decision header, and its policy.
/// Two ids are equal when their text is: the policy index is the numbering of one engine.
#[derive(Debug, Clone)]
pub struct RuleId {
    text: Box<str>,
    /// `text[..policy_len]` names the policy the rule belongs to (`u32`: an id is 24 bytes, not
    /// 32; a longer text falls back to the whole id).
    policy_len: u32,
    /// The policy's index among the engine's policies, set when the engine is built
    /// (`u32::MAX`: not among them).
    policy_index: u32,
}

impl PartialEq for RuleId {
    fn eq(&self, other: &RuleId) -> bool {
        self.text == other.text
    }
}

impl Eq for RuleId {}

impl RuleId {
    /// Rule `rule` of AuthorizationPolicy `namespace/name`: `ns[NS]-policy[NAME]-rule[IDX]`.
    pub fn authorization_policy(namespace: &str, name: &str, rule: usize) -> RuleId {
        let policy = format!("ns[{namespace}]-policy[{name}]");
        let policy_len = u32::try_from(policy.len()).unwrap_or(u32::MAX);
        RuleId {
            text: format!("{policy}-rule[{rule}]").into(),
            policy_len,
            policy_index: u32::MAX,
        }
    }

    /// A legacy RBAC (binding, role) pair: `ns[NS]-servicerolebinding[B]-role[R]`, its own policy.
    pub fn role_binding(namespace: &str, binding: &str, role: &str) -> RuleId {
        RuleId::whole(format!(
            "ns[{namespace}]-servicerolebinding[{binding}]-role[{role}]"
        ))
    }

    /// A SuperGloo SecurityRule: `ns[NS]-securityrule[NAME]`, its own policy.
    pub fn security_rule(namespace: &str, name: &str) -> RuleId {
        RuleId::whole(format!("ns[{namespace}]-securityrule[{name}]"))
    }

    fn whole(text: String) -> RuleId {
        RuleId {
            policy_len: u32::try_from(text.len()).unwrap_or(u32::MAX),
            text: text.into(),
            policy_index: u32::MAX,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The policy part of the id.
    pub fn policy(&self) -> &str {
        usize::try_from(self.policy_len)
            .ok()
            .and_then(|len| self.text.get(..len))
            .unwrap_or(&self.text)
    }

    /// The policy's index among the engine's policies.
    pub fn policy_index(&self) -> u32 {
        self.policy_index
    }

    pub fn set_policy_index(&mut self, index: u32) {
        self.policy_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_as_istio_names_them_and_know_their_policy() {
        let r = RuleId::authorization_policy("foo", "allow-get", 2);
        assert_eq!(r.as_str(), "ns[foo]-policy[allow-get]-rule[2]");
        assert_eq!(r.policy(), "ns[foo]-policy[allow-get]");
        // A policy name that itself looks like a rule suffix is no problem.
        let odd = RuleId::authorization_policy("foo", "x-rule[1]", 0);
        assert_eq!(odd.policy(), "ns[foo]-policy[x-rule[1]]");
        let b = RuleId::role_binding("default", "bind", "viewer");
        assert_eq!(b.policy(), b.as_str());
        assert_eq!(
            RuleId::security_rule("default", "s").as_str(),
            "ns[default]-securityrule[s]"
        );
        // Engines number policies differently; the same rule is still the same rule.
        let mut renumbered = r.clone();
        renumbered.set_policy_index(4);
        assert_eq!(renumbered, r);
    }
}
