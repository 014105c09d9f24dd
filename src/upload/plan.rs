//! How a file is cut into parts: a pure function of its size and the part size.

use crate::error::Error;
use crate::validate::rules::{MAX_PART_BYTES, MAX_UPLOAD_BYTES, Rule, RuleViolation};

/// Default part size: the largest the API takes, 64 MB.
pub const DEFAULT_PART_SIZE: u64 = MAX_PART_BYTES;

/// One part of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedPart {
    /// 1-based position in the file.
    pub number: u32,
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes (never 0).
    pub len: u64,
}

/// The parts of a file of `total` bytes cut every `part_size` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartPlan {
    total: u64,
    part_size: u64,
}

impl PartPlan {
    /// Plans `total` bytes in parts of `part_size`, refusing what the API would.
    pub fn new(total: u64, part_size: u64) -> Result<Self, Error> {
        let refuse = |rule, field: &str, value: u64, message: &str| {
            Err(Error::InvalidRequest(vec![RuleViolation {
                rule,
                field: field.into(),
                value: value.to_string(),
                message: message.into(),
            }]))
        };
        if total == 0 {
            return refuse(
                Rule::BytesPositive,
                "bytes",
                total,
                "the file is empty; an Upload needs at least one byte",
            );
        }
        if total > MAX_UPLOAD_BYTES {
            return refuse(
                Rule::BytesAtMost8Gb,
                "bytes",
                total,
                "the file is larger than the 8 GB an Upload holds",
            );
        }
        if part_size == 0 {
            return refuse(
                Rule::PartNotEmpty,
                "part_size",
                part_size,
                "must be at least 1",
            );
        }
        if part_size > MAX_PART_BYTES {
            return refuse(
                Rule::PartAtMost64Mb,
                "part_size",
                part_size,
                "must be at most 64 MB (67108864)",
            );
        }
        Ok(Self { total, part_size })
    }

    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Size of every part but possibly the last.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// Number of parts.
    pub fn len(&self) -> u32 {
        self.total.div_ceil(self.part_size) as u32
    }

    /// Whether the plan has no parts (never true for a valid plan).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Part `number` (1-based), if it exists.
    pub fn part(&self, number: u32) -> Option<PlannedPart> {
        if number == 0 || number > self.len() {
            return None;
        }
        let offset = u64::from(number - 1) * self.part_size;
        Some(PlannedPart {
            number,
            offset,
            len: self.part_size.min(self.total - offset),
        })
    }

    /// Every part, in file order.
    pub fn parts(&self) -> impl Iterator<Item = PlannedPart> + '_ {
        (1..=self.len()).filter_map(|n| self.part(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_file_exactly_once() {
        for (total, size) in [(1, 1), (10, 3), (12, 3), (13, 3), (64, 64), (65, 64)] {
            let plan = PartPlan::new(total, size).unwrap();
            let mut next = 0;
            for part in plan.parts() {
                assert_eq!(part.offset, next);
                assert!(part.len > 0 && part.len <= size);
                next += part.len;
            }
            assert_eq!(next, total);
            assert_eq!(plan.parts().count() as u32, plan.len());
        }
    }

    #[test]
    fn refuses_what_the_api_refuses() {
        let rule = |r: Result<PartPlan, Error>| match r {
            Err(Error::InvalidRequest(v)) => v[0].rule,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(rule(PartPlan::new(0, 10)), Rule::BytesPositive);
        assert_eq!(
            rule(PartPlan::new(MAX_UPLOAD_BYTES + 1, 10)),
            Rule::BytesAtMost8Gb
        );
        assert_eq!(rule(PartPlan::new(10, 0)), Rule::PartNotEmpty);
        assert_eq!(
            rule(PartPlan::new(10, MAX_PART_BYTES + 1)),
            Rule::PartAtMost64Mb
        );
        assert_eq!(
            PartPlan::new(MAX_UPLOAD_BYTES, MAX_PART_BYTES)
                .unwrap()
                .len(),
            128
        );
    }
}
