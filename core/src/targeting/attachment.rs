//! How a resource attaches to workloads: `selector.matchLabels`, `targetRef` or `targetRefs`,
//! shared by every policy kind (istiod's attachment rules).

use crate::config_json::string_map::StringMap;

use crate::config_json::reader::{FromJson, Json};
use crate::error::{config_err as err, ConfigPath, ConfigResult as Result};

#[derive(Debug)]
pub struct WorkloadSelector {
    pub match_labels: StringMap,
}

impl FromJson for WorkloadSelector {
    fn from_json(value: &Json<'_>) -> Result<WorkloadSelector> {
        let f = value.fields("WorkloadSelector", &["matchLabels"])?;
        Ok(WorkloadSelector {
            match_labels: f.or_default("matchLabels", Json::string_map)?,
        })
    }
}

#[derive(Debug)]
pub struct TargetRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

impl FromJson for TargetRef {
    fn from_json(value: &Json<'_>) -> Result<TargetRef> {
        let f = value.fields("TargetRef", &["group", "kind", "name", "namespace"])?;
        Ok(TargetRef {
            group: f.optional("group", Json::string)?,
            kind: f.optional("kind", Json::string)?,
            name: f.optional("name", Json::string)?,
            namespace: f.optional("namespace", Json::string)?,
        })
    }
}

/// istiod's attachment rules, shared by every policy kind with a workload selector: at most
/// one of `selector`, `targetRef`, `targetRefs`, and `kind` and `name` on every target
/// reference. Returns whether the resource is attached by target reference (then it never
/// applies to a sidecar). Errors are relative to the spec.
pub fn check_attachment(
    selector: bool,
    single: Option<&TargetRef>,
    list: Option<&[TargetRef]>,
) -> Result<bool> {
    let by_reference = single.is_some() || list.is_some_and(|l| !l.is_empty());
    let kinds = [
        selector,
        single.is_some(),
        list.is_some_and(|l| !l.is_empty()),
    ];
    if kinds.iter().filter(|set| **set).count() > 1 {
        return err(
            "",
            "only one of selector, targetRef or targetRefs may be set",
        );
    }
    let missing = |t: &TargetRef| {
        t.kind.as_deref().is_none_or(str::is_empty) || t.name.as_deref().is_none_or(str::is_empty)
    };
    if single.is_some_and(missing) {
        return err("targetRef", "kind and name are required");
    }
    for (i, t) in list.unwrap_or_default().iter().enumerate() {
        if missing(t) {
            return err(
                ConfigPath::root().field("targetRefs").index(i),
                "kind and name are required",
            );
        }
    }
    Ok(by_reference)
}
