//! The journal's framing: one record per line, `<checksum> <json>\n`, the checksum being the
//! first 16 hex digits of the SHA-256 of the JSON. JSON escapes newlines, so a line is a
//! record; a last line without its newline, or with a checksum that does not match, is a
//! record torn by a crash.

use sha2::{Digest, Sha256};

use super::{Loaded, Record};
use crate::{Error, Result};

fn checksum(json: &[u8]) -> String {
    hex::encode(&Sha256::digest(json)[..8])
}

pub(super) fn encode(record: &Record) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(record).map_err(|e| Error::InvalidRequest {
        provider: "journal".into(),
        operation: "append".into(),
        message: format!("cannot serialise the record: {e}"),
    })?;
    let mut out = Vec::with_capacity(json.len() + 18);
    out.extend_from_slice(checksum(&json).as_bytes());
    out.push(b' ');
    out.extend_from_slice(&json);
    out.push(b'\n');
    Ok(out)
}

fn parse(line: &[u8]) -> Option<Record> {
    let (sum, json) = (line.get(..16)?, line.get(17..)?);
    if line.get(16) != Some(&b' ') || sum != checksum(json).as_bytes() {
        return None;
    }
    serde_json::from_slice(json).ok()
}

pub(super) fn decode(bytes: &[u8], what: &str) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut lines = bytes.split_inclusive(|b| *b == b'\n').peekable();
    let mut n = 0usize;
    while let Some(line) = lines.next() {
        n += 1;
        let last = lines.peek().is_none();
        let complete = line.last() == Some(&b'\n');
        let record = if complete {
            parse(&line[..line.len() - 1])
        } else {
            None
        };
        match record {
            Some(r) => loaded.records.push(r),
            None if last => loaded.torn_tail = true,
            None => {
                return Err(Error::InvalidResponse {
                    provider: "journal".into(),
                    operation: "load".into(),
                    message: format!("{what}: record {n} is damaged (checksum or format)"),
                })
            }
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(step: &str) -> Record {
        Record::Intent {
            step: step.into(),
            key: format!("k/{step}"),
            attempt: 1,
            at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            memory: Default::default(),
        }
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let mut bytes = encode(&intent("a")).unwrap();
        let whole = bytes.len();
        bytes.extend(encode(&intent("b")).unwrap());
        for cut in whole + 1..bytes.len() {
            let loaded = decode(&bytes[..cut], "test").unwrap();
            assert_eq!(loaded.records, [intent("a")], "cut at {cut}");
            assert!(loaded.torn_tail, "cut at {cut}");
        }
        let loaded = decode(&bytes, "test").unwrap();
        assert_eq!(loaded.records.len(), 2);
        assert!(!loaded.torn_tail);
    }

    #[test]
    fn a_damaged_record_before_the_last_is_an_error() {
        let mut bytes = encode(&intent("a")).unwrap();
        bytes.extend(encode(&intent("b")).unwrap());
        bytes[20] ^= 0x01;
        let err = decode(&bytes, "run.journal").unwrap_err().to_string();
        assert!(err.contains("run.journal: record 1 is damaged"), "{err}");
    }
}
