//! How a file is cut into parts: a pure function of its size and the part size.

use crate::error::Error;
#[cfg(test)]
use crate::validate::rules::MAX_UPLOAD_BYTES;
use crate::validate::rules::{self, MAX_PART_BYTES, Rule};

/// Smallest part size chosen when none is given (8 MiB): large enough that
/// a request's round trip is a small share of a part's time on a slow
/// stream, as the S3 tools find.
pub const MIN_DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;

/// Parts a file is cut into, about, when no part size is given: enough to
/// spread over many streams and leave a short tail.
pub const TARGET_PARTS: u64 = 128;

/// The part size for a file of `total` bytes when none is given: about
/// [`TARGET_PARTS`] parts, a whole number of MiB from
/// [`MIN_DEFAULT_PART_SIZE`] to 64 MiB (the API's largest part). An 8 GB
/// file goes in 128 parts of 64 MiB, 1 GiB in 128 of 8 MiB, 256 MiB in 32.
pub fn default_part_size(total: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    total
        .div_ceil(TARGET_PARTS)
        .next_multiple_of(MIB)
        .clamp(MIN_DEFAULT_PART_SIZE, MAX_PART_BYTES)
}

/// Smallest part size a plan takes (4 KiB), but for a file smaller than
/// that: below it the request and its multipart framing outweigh the bytes.
pub const MIN_PART_SIZE: u64 = 4096;

/// Most parts a plan takes. The API states no limit; past this one the
/// completion's `part_ids` list and the per-part bookkeeping grow without
/// use (a file of 8 GB still fits in parts of 859 KB).
pub const MAX_PARTS: u64 = 10_000;

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
        let refused = rules::check_upload_bytes(total);
        if !refused.is_empty() {
            return Err(Error::InvalidRequest(refused));
        }
        let setting = |message: String| {
            Err(Error::InvalidSetting {
                setting: "part_size",
                value: part_size.to_string(),
                message,
            })
        };
        if let Some(refused) = rules::check_part_size(part_size).into_iter().next()
            && refused.rule == Rule::PartAtMost64Mb
        {
            return setting(format!("{} (rule {})", refused.message, refused.rule));
        }
        if part_size < MIN_PART_SIZE && part_size < total {
            return setting(format!(
                "must be at least {MIN_PART_SIZE} (4 KiB), or the whole file ({total} bytes)"
            ));
        }
        let parts = total.div_ceil(part_size);
        if parts > MAX_PARTS {
            return setting(format!(
                "cuts {total} bytes into {parts} parts, more than the {MAX_PARTS} a plan takes: \
                 use at least {}",
                total.div_ceil(MAX_PARTS)
            ));
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
        let k = MIN_PART_SIZE;
        for (total, size) in [
            (1, k),
            (10, 10),
            (k, k),
            (k + 1, k),
            (3 * k, k),
            (3 * k + 1, 2 * k),
        ] {
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
            rule(PartPlan::new(MAX_UPLOAD_BYTES + 1, MIN_PART_SIZE)),
            Rule::BytesAtMost8Gb
        );
        assert_eq!(
            PartPlan::new(MAX_UPLOAD_BYTES, MAX_PART_BYTES)
                .unwrap()
                .len(),
            128
        );
    }

    #[test]
    fn the_default_part_size_follows_the_file_size() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(default_part_size(1), 8 * MIB);
        assert_eq!(default_part_size(256 * MIB), 8 * MIB);
        assert_eq!(default_part_size(1024 * MIB), 8 * MIB);
        assert_eq!(default_part_size(1024 * MIB + 1), 9 * MIB);
        assert_eq!(default_part_size(4096 * MIB), 32 * MIB);
        assert_eq!(default_part_size(MAX_UPLOAD_BYTES), MAX_PART_BYTES);
        for total in [1, 1000, 300 * MIB, MAX_UPLOAD_BYTES] {
            let plan = PartPlan::new(total, default_part_size(total)).unwrap();
            assert!(u64::from(plan.len()) <= TARGET_PARTS, "{total}");
        }
    }

    #[test]
    fn refuses_part_sizes_outside_the_limits_naming_them() {
        let refusal = |r: Result<PartPlan, Error>| match r {
            Err(Error::InvalidSetting {
                setting, message, ..
            }) => {
                assert_eq!(setting, "part_size");
                message
            }
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refusal(PartPlan::new(100 << 20, 0)).contains("at least 4096"));
        assert!(refusal(PartPlan::new(100 << 20, 1)).contains("at least 4096"));
        assert!(refusal(PartPlan::new(10, MAX_PART_BYTES + 1)).contains("at most 67108864"));
        let many = refusal(PartPlan::new(100 << 20, 5000));
        assert!(
            many.contains("20972 parts") && many.contains("10000"),
            "{many}"
        );
        // A file smaller than the minimum goes in one part of its own size.
        assert_eq!(PartPlan::new(10, 10).unwrap().len(), 1);
        assert!(PartPlan::new(10, 3).is_err());
        // The largest plan.
        let most = PartPlan::new(MAX_PARTS * MIN_PART_SIZE, MIN_PART_SIZE).unwrap();
        assert_eq!(u64::from(most.len()), MAX_PARTS);
    }
}
