-- GitHub pacing shared by every replica (issue 8): per installation, the content budget's
-- theoretical arrival time (a GCRA, in microseconds since the Unix epoch, so that both
-- databases do the same integer arithmetic) and the pause after a rate-limit answer.
CREATE TABLE github_pacing (
    installation BIGINT PRIMARY KEY,
    tat_us BIGINT NOT NULL,
    paused_until_us BIGINT
);
