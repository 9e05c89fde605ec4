//! `meshguard lint`: every plugin configuration in the files loads, or the error names the field.

use crate::documents::{describe_workload, load_value, remote_jwks, units};
use crate::{Fail, LintArgs};

pub fn lint(args: &LintArgs) -> Result<u8, Fail> {
    let node = args.node.node();
    let mut failed = false;
    for file in &args.files {
        let units = match units(file) {
            Ok(u) => u,
            Err(e) => {
                eprintln!("{file}: {e}");
                failed = true;
                continue;
            }
        };
        for unit in units {
            for w in &unit.warnings {
                eprintln!("warning: {w}");
            }
            for e in &unit.errors {
                eprintln!("{e}");
                failed = true;
            }
            match load_value(&unit.config, &node) {
                Ok((engine, report)) => {
                    let remote = remote_jwks(&engine);
                    println!(
                        "{}: ok: {} resources, {} applied, {} rules; workload {}{}",
                        unit.label,
                        report.resources,
                        report.applied_policies,
                        engine.rule_count(),
                        describe_workload(&report),
                        if remote.is_empty() {
                            String::new()
                        } else {
                            format!("; remote JWKS: {}", remote.join(", "))
                        }
                    );
                }
                Err(e) => {
                    eprintln!("{}", unit.error_text(&e));
                    failed = true;
                }
            }
        }
    }
    Ok(u8::from(failed))
}
