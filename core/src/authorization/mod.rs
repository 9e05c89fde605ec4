//! The authorization kinds: Istio `AuthorizationPolicy`, legacy `ServiceRole`/`ServiceRoleBinding`
//! RBAC and SuperGloo `SecurityRule`, all compiled to the same rules.

pub mod authorization_policy;
pub mod deny_response;
pub mod legacy_rbac;
pub mod rule_explanation;
pub mod rule_id;
pub mod security_rule;
