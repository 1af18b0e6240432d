//! The job id: `job_id_N`, its one spelling, and how it is parsed.

use std::fmt;

/// A job id: `job_id_N`, N ≥ 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl JobId {
    /// Parses `job_id_N` or `N` (ASCII digits only, N ≥ 1, no sign, no
    /// overflow); `None` for anything else.
    ///
    /// Leading zeros are rejected (`job_id_01`, `007`): every job has
    /// exactly one spelling, the one [`Display`](fmt::Display) prints, so
    /// an id can never name a job by a second path. Nothing else is trimmed
    /// or folded: `Job_Id_1`, ` 1`, `+1`, `1.0` are all `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<JobId> {
        let digits = text.strip_prefix("job_id_").unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !canonical {
            return None;
        }
        // Only ASCII digits remain, so the one error left is overflow.
        digits.parse().ok().map(JobId)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job_id_{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_both_spellings() {
        assert_eq!(JobId::parse("job_id_1"), Some(JobId(1)));
        assert_eq!(JobId::parse("1"), Some(JobId(1)));
        assert_eq!(JobId::parse("job_id_1234567"), Some(JobId(1_234_567)));
        assert_eq!(JobId::parse("18446744073709551615"), Some(JobId(u64::MAX)));
    }

    #[test]
    fn parse_rejects_everything_else() {
        for text in [
            "",
            "job_id_",
            "0",
            "job_id_0",
            "01",
            "job_id_01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "job_id_job_id_1",
            "Job_Id_1",
            "job-id-1",
            "job_id_1/../2",
            "../something",
            "18446744073709551616",
            "99999999999999999999999",
            "١",
            "job_id_x",
        ] {
            assert_eq!(JobId::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for n in [1, 7, 10, 1_000_000, u64::MAX] {
            let id = JobId(n);
            assert_eq!(JobId::parse(&id.to_string()), Some(id));
        }
        assert_eq!(JobId(7).to_string(), "job_id_7");
    }
}
