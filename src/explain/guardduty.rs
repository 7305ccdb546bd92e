//! GuardDuty finding types explained by family, with the recommended first response.
//!
//! A GuardDuty finding type reads `ThreatPurpose:ResourceTypeAffected/ThreatFamilyName.DetectionMechanism!Artifact`
//! (ASFF writes the first `/` as `-`: `UnauthorizedAccess:EC2-SSHBruteForce`). The family is
//! `ThreatPurpose:ResourceTypeAffected` (`Recon:EC2`); [`family`] looks it up, and falls back to
//! the threat purpose alone (`Recon`) for resource types the table does not name. The text is
//! Lever's own and follows the curated prose rules (checked in the tests): no links, HTML, `@`,
//! `#` or backslashes.

/// One family of GuardDuty finding types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Family {
    /// `ThreatPurpose:ResourceTypeAffected`, or `ThreatPurpose` for a fallback.
    pub prefix: &'static str,
    /// What GuardDuty saw, in plain words.
    pub meaning: &'static str,
    /// What to do first.
    pub first_response: &'static str,
}

const fn f(prefix: &'static str, meaning: &'static str, first_response: &'static str) -> Family {
    Family {
        prefix,
        meaning,
        first_response,
    }
}

/// The families, specific ones first; a fallback per threat purpose at the end.
pub const FAMILIES: &[Family] = &[
    f(
        "UnauthorizedAccess:IAMUser",
        "Someone used an IAM user's or role's credentials in a way that does not fit its history: from an unusual place or network, a known malicious address, or outside AWS for credentials that only an instance should hold. This is often the first sign of leaked access keys.",
        "Ask the owner of the principal whether they did it. If not, deactivate the access keys (or revoke the role's active sessions), rotate the credentials, and read CloudTrail for everything the principal did in the last days.",
    ),
    f(
        "UnauthorizedAccess:EC2",
        "An instance is the target of, or the source of, access attempts that should not happen: brute force against SSH or RDP, or traffic with known malicious addresses.",
        "Check whether the instance really needs SSH or RDP open to the internet and close it (Session Manager replaces both). If the instance initiated the traffic, isolate it with a security group that allows nothing and snapshot its volumes before you investigate.",
    ),
    f(
        "UnauthorizedAccess:S3",
        "Someone reached an S3 bucket in an unusual way, for example from a known malicious address or with credentials that do not normally touch it.",
        "Find the principal and source address in the finding, confirm with its owner, and revoke or rotate the credentials if the access was not theirs. Review the bucket policy and Block Public Access settings.",
    ),
    f(
        "Recon:IAMUser",
        "A principal listed or described permissions, users or resources in a way that looks like someone mapping the account before an attack.",
        "Ask the owner of the principal whether a script or person of theirs did this. If nobody did, treat the credentials as leaked: deactivate them and read CloudTrail for what else they were used for.",
    ),
    f(
        "Recon:EC2",
        "An instance is being port-scanned from outside, or is scanning other hosts itself.",
        "If the instance is the target, close the ports that do not need to be public. If it is the scanner, isolate it with an empty security group and check what software is running on it.",
    ),
    f(
        "CryptoCurrency:EC2",
        "An instance talks to cryptocurrency mining pools or networks. Unless someone runs mining on purpose, the instance is compromised and someone else is paying their compute with your bill.",
        "Isolate the instance with an empty security group, snapshot its volumes for investigation, then replace it from a clean image. Rotate any credentials the instance had, including its instance role's.",
    ),
    f(
        "Trojan:EC2",
        "An instance contacts addresses or domains known for malware command and control, or behaves like infected software.",
        "Isolate the instance, snapshot its volumes, and rebuild it from a known-good image rather than cleaning it. Rotate the credentials it held and check other instances built from the same image.",
    ),
    f(
        "Backdoor:EC2",
        "An instance behaves as if someone else controls it: it takes part in denial-of-service attacks, spam or talks to command and control servers.",
        "Isolate the instance with an empty security group, snapshot its volumes, and replace it from a clean image. Rotate the instance role's credentials and find how the attacker got in before the replacement goes live.",
    ),
    f(
        "Impact:EC2",
        "An instance is used to harm others or your account: sending spam, attacking other hosts, or talking to domains used for abuse.",
        "Isolate the instance and confirm with its owner what it is supposed to do. If it is not expected, snapshot and replace it, and rotate the credentials it held.",
    ),
    f(
        "Exfiltration:S3",
        "Objects are read from a bucket in a pattern that looks like data being taken out, for example a principal downloading far more than usual or from an unusual place.",
        "Identify the principal and the objects in the finding and confirm with the owner. If it is not expected, revoke the credentials, restrict the bucket policy, and assess which data left, since it may need to be reported.",
    ),
    f(
        "Policy:S3",
        "A bucket's protection was loosened: Block Public Access turned off, or a policy or ACL made the bucket public.",
        "Find who made the change in CloudTrail and whether it was intended. If not, turn Block Public Access back on and review what was readable while it was off.",
    ),
    f(
        "Policy:IAMUser",
        "The root user was used, or account-level protection was turned off. Root activity is rare and powerful, so any of it deserves a look.",
        "Confirm with the people who hold the root credentials that it was them and why. If not, reset the root password, check the MFA device, and review CloudTrail for what was done.",
    ),
    f(
        "Discovery:S3",
        "A principal listed or described buckets and objects in an unusual way, as someone exploring what data exists would.",
        "Ask the owner of the principal whether it was expected. If not, deactivate the credentials and review what they read afterwards.",
    ),
    f(
        "PenTest:IAMUser",
        "API calls came from a machine running penetration-testing tools such as Kali, Parrot or Pentoo Linux.",
        "Check whether an authorised penetration test is running with these credentials. If not, treat the credentials as compromised: deactivate them and review their activity.",
    ),
    f(
        "Stealth:IAMUser",
        "Someone tried to hide their tracks: CloudTrail logging stopped, a password policy weakened, or calls made through anonymising networks.",
        "Undo the change at once (turn CloudTrail logging back on, restore the password policy) and find the principal in CloudTrail. Treat it as an active intrusion until the owner explains it.",
    ),
    f(
        "Stealth:S3",
        "S3 server access logging was turned off for a bucket, which hides who reads it.",
        "Turn access logging back on and find who turned it off and why.",
    ),
    f(
        "Persistence:IAMUser",
        "A principal did something an attacker does to keep access, such as creating users, keys or login profiles in an unusual way.",
        "Confirm with the owner. If it is not expected, delete what was created, deactivate the principal's credentials and review its activity.",
    ),
    f(
        "PrivilegeEscalation:IAMUser",
        "A principal tried to give itself or others more permissions than it normally has.",
        "Confirm with the owner. If it is not expected, remove the added permissions, deactivate the credentials and review what the principal did.",
    ),
    f(
        "CredentialAccess:IAMUser",
        "A principal read secrets or credentials in an unusual way, such as retrieving many secrets or passwords at once.",
        "Confirm with the owner. If it is not expected, rotate every secret that was read and deactivate the principal's credentials.",
    ),
    f(
        "Execution:Runtime",
        "Runtime monitoring saw a process on a host or container that should not be there, such as a new binary or a known malicious tool.",
        "Isolate the workload, keep its disk or container image for investigation, and redeploy from a clean image. Check how the binary got there.",
    ),
    f(
        "Discovery:Kubernetes",
        "Someone probed a Kubernetes cluster's API in an unusual way, for example anonymously or from a known malicious address.",
        "Check the cluster's API endpoint exposure and authentication settings, and restrict the endpoint to known networks. Review the audit log for what the caller could see.",
    ),
    // Fallbacks by threat purpose.
    f(
        "UnauthorizedAccess",
        "GuardDuty saw access to a resource that does not fit its normal use, often a sign of stolen credentials or an exposed service.",
        "Find the principal or address in the finding, confirm with the owner whether it was expected, and revoke or rotate credentials if it was not.",
    ),
    f(
        "Recon",
        "GuardDuty saw someone mapping your resources, which often comes before an attack.",
        "Confirm whether the activity was expected. If not, close exposed ports or deactivate the credentials involved.",
    ),
    f(
        "Backdoor",
        "A resource behaves as if someone else controls it.",
        "Isolate the resource, keep evidence (snapshots, logs), and replace it from a clean source. Rotate the credentials it held.",
    ),
    f(
        "Trojan",
        "A resource talks to infrastructure known for malware.",
        "Isolate the resource, keep evidence, and rebuild it from a clean source. Rotate the credentials it held.",
    ),
    f(
        "CryptoCurrency",
        "A resource talks to cryptocurrency mining infrastructure.",
        "Isolate and replace the resource unless mining is intended, and rotate its credentials.",
    ),
    f(
        "Exfiltration",
        "GuardDuty saw a pattern that looks like data leaving your account.",
        "Identify the principal and the data, confirm with the owner, and revoke access if it was not expected.",
    ),
    f(
        "Impact",
        "A resource is used to cause harm, to others or to your account.",
        "Isolate the resource, confirm its purpose with the owner, and replace it if it is compromised.",
    ),
    f(
        "Policy",
        "A security setting was changed in a way that weakens protection.",
        "Find the change in CloudTrail, confirm it with the person who made it, and undo it if it was not intended.",
    ),
    f(
        "Discovery",
        "Someone explored what resources or data exist in an unusual way.",
        "Confirm with the owner of the principal whether it was expected; if not, deactivate its credentials.",
    ),
    f(
        "PenTest",
        "Activity came from penetration-testing tools.",
        "Check whether an authorised test is running; if not, treat the credentials as compromised.",
    ),
    f(
        "Stealth",
        "Someone tried to hide their activity.",
        "Undo the change, find the principal, and treat it as an active intrusion until explained.",
    ),
    f(
        "Persistence",
        "Someone did something to keep access to your account.",
        "Remove what was created and deactivate the credentials involved unless the owner explains it.",
    ),
    f(
        "PrivilegeEscalation",
        "Someone tried to gain more permissions.",
        "Remove the added permissions and deactivate the credentials involved unless the owner explains it.",
    ),
    f(
        "CredentialAccess",
        "Someone read credentials or secrets in an unusual way.",
        "Rotate what was read and deactivate the credentials involved unless the owner explains it.",
    ),
    f(
        "DefenseEvasion",
        "Someone tried to switch off or get around monitoring.",
        "Restore the monitoring, find the principal, and treat it as an active intrusion until explained.",
    ),
    f(
        "Execution",
        "Unexpected code ran on a workload.",
        "Isolate the workload, keep evidence, and redeploy it from a clean source.",
    ),
    f(
        "Behavior",
        "A resource behaves differently from its usual baseline, such as talking on an unusual port or sending far more traffic.",
        "Confirm with the owner whether the change is expected, such as a new release. If not, isolate the resource and investigate.",
    ),
];

/// The family of a finding type (`Recon:EC2-PortProbeUnprotectedPort` → `Recon:EC2`), or the
/// fallback for its threat purpose; `None` when the type is not of GuardDuty's shape or its
/// purpose is unknown.
pub fn family(finding_type: &str) -> Option<&'static Family> {
    let (purpose, rest) = finding_type.trim().split_once(':')?;
    let resource = rest.split(['/', '-']).next().unwrap_or_default();
    let specific = format!("{purpose}:{resource}");
    FAMILIES
        .iter()
        .find(|f| f.prefix == specific)
        .or_else(|| FAMILIES.iter().find(|f| f.prefix == purpose))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::curated::prose_problems;

    #[test]
    fn types_find_their_family_or_the_purpose_fallback() {
        let cases = [
            (
                "UnauthorizedAccess:EC2-SSHBruteForce",
                Some("UnauthorizedAccess:EC2"),
            ),
            (
                "UnauthorizedAccess:EC2/SSHBruteForce",
                Some("UnauthorizedAccess:EC2"),
            ),
            ("Recon:IAMUser-UserPermissions", Some("Recon:IAMUser")),
            (
                "CryptoCurrency:EC2/BitcoinTool.B!DNS",
                Some("CryptoCurrency:EC2"),
            ),
            (
                "Policy:S3/BucketBlockPublicAccessDisabled",
                Some("Policy:S3"),
            ),
            ("Recon:Lambda/Whatever", Some("Recon")),
            (
                "Execution:Runtime/NewBinaryExecuted",
                Some("Execution:Runtime"),
            ),
            ("Nonsense:EC2/X", None),
            ("no colon at all", None),
        ];
        for (t, want) in cases {
            assert_eq!(family(t).map(|f| f.prefix), want, "{t}");
        }
    }

    #[test]
    fn the_text_follows_the_curated_prose_rules_and_prefixes_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FAMILIES {
            assert!(seen.insert(f.prefix), "{} twice", f.prefix);
            for text in [f.meaning, f.first_response] {
                assert!(!text.trim().is_empty(), "{}", f.prefix);
                assert_eq!(prose_problems(text), Vec::<&str>::new(), "{}", f.prefix);
            }
        }
    }
}
