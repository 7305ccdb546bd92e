//! Labels of the workflow vocabulary.

pub const SECURITY_FINDING: &str = "security-finding";
pub const ACKNOWLEDGED: &str = "acknowledged";
pub const IN_PROGRESS: &str = "in-progress";
pub const EXCEPTION_REQUESTED: &str = "exception-requested";
pub const CTO_APPROVED: &str = "cto-approved";
pub const NEEDS_VERIFICATION: &str = "needs-verification";
pub const OVERDUE: &str = "overdue";

/// (name, colour, description) of every label Lever creates in a repository.
pub const VOCABULARY: &[(&str, &str, &str)] = &[
    (
        SECURITY_FINDING,
        "b60205",
        "A Security Hub finding explained by Lever",
    ),
    (ACKNOWLEDGED, "0e8a16", "The assignee has seen it"),
    (IN_PROGRESS, "1d76db", "Someone is working on the fix"),
    (
        EXCEPTION_REQUESTED,
        "fbca04",
        "The team asks not to fix it; an approver decides",
    ),
    (
        CTO_APPROVED,
        "5319e7",
        "Exception approved (only counts when applied by an approver)",
    ),
    (
        NEEDS_VERIFICATION,
        "d93f0b",
        "Closed, but Security Hub still reports the problem",
    ),
    (OVERDUE, "b60205", "Past its fix deadline"),
];
