//! The event log read with `COPY ... TO STDOUT (FORMAT binary)`: one
//! stream of tuples instead of one message (and one wake of the client's
//! runtime) per row, which is what verifying a long log spends its time on.

use crate::error::{StoreError, StoreResult};
use pushpals_core::chain::StoredRow;
use std::io::Read;

/// The signature a binary COPY stream starts with.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// How many columns an event row has.
const COLUMNS: usize = 8;

/// The `COPY` statement for the events with ids in `from..to` (numbers,
/// written in: COPY takes no parameters).
pub(super) fn copy_events(from: i64, to: i64) -> String {
    format!(
        "COPY (SELECT id, task_id, time, actor, kind, payload, prev_hash, hash FROM events \
         WHERE id >= {from} AND id < {to} ORDER BY id) TO STDOUT (FORMAT binary)"
    )
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: "events".into(),
        detail: detail.into(),
    }
}

fn read_exact(reader: &mut dyn Read, into: &mut [u8]) -> StoreResult<()> {
    reader
        .read_exact(into)
        .map_err(|e| corrupt(format!("the copied rows broke off: {e}")))
}

/// Reads every event row of a binary COPY stream, in order.
pub(super) fn each_copied_event(
    reader: &mut dyn Read,
    each: &mut dyn FnMut(&StoredRow<'_>) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut header = [0u8; 19];
    read_exact(reader, &mut header)?;
    if &header[..11] != SIGNATURE {
        return Err(corrupt("the copy is not in PostgreSQL's binary format"));
    }
    let extension = u32::from_be_bytes([header[15], header[16], header[17], header[18]]);
    let mut skipped = vec![0u8; usize::try_from(extension).unwrap_or(0).min(1 << 20)];
    read_exact(reader, &mut skipped)?;
    let mut fields: [Vec<u8>; COLUMNS] = Default::default();
    let mut present = [false; COLUMNS];
    loop {
        let mut count = [0u8; 2];
        read_exact(reader, &mut count)?;
        match i16::from_be_bytes(count) {
            -1 => return Ok(()),
            n if n == COLUMNS as i16 => {}
            n => {
                return Err(corrupt(format!(
                    "a copied row has {n} columns, not {COLUMNS}"
                )));
            }
        }
        for (field, present) in fields.iter_mut().zip(present.iter_mut()) {
            let mut length = [0u8; 4];
            read_exact(reader, &mut length)?;
            let length = i32::from_be_bytes(length);
            field.clear();
            *present = length >= 0;
            if length > 0 {
                field.resize(usize::try_from(length).unwrap_or(0), 0);
                read_exact(reader, field)?;
            }
        }
        let id_bytes: [u8; 8] = fields[0]
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("a copied id is not 8 bytes"))?;
        let text = |index: usize| -> StoreResult<&str> {
            std::str::from_utf8(&fields[index])
                .map_err(|_| corrupt(format!("column {index} of a copied row is not UTF-8")))
        };
        each(&StoredRow {
            id: i64::from_be_bytes(id_bytes),
            task_id: if present[1] { Some(text(1)?) } else { None },
            time: text(2)?,
            actor: text(3)?,
            kind: text(4)?,
            payload_text: text(5)?,
            prev_hash: text(6)?,
            hash: text(7)?,
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY stream of `rows` (each: id, then 7 optional texts).
    fn stream(rows: &[(i64, [Option<&str>; 7])]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend(0u32.to_be_bytes());
        out.extend(0u32.to_be_bytes());
        for (id, texts) in rows {
            out.extend((COLUMNS as i16).to_be_bytes());
            out.extend(8i32.to_be_bytes());
            out.extend(id.to_be_bytes());
            for text in texts {
                match text {
                    Some(text) => {
                        out.extend(i32::try_from(text.len()).unwrap().to_be_bytes());
                        out.extend(text.as_bytes());
                    }
                    None => out.extend((-1i32).to_be_bytes()),
                }
            }
        }
        out.extend((-1i16).to_be_bytes());
        out
    }

    fn read(bytes: &[u8]) -> StoreResult<Vec<(i64, Option<String>, String)>> {
        let mut seen = Vec::new();
        each_copied_event(&mut &bytes[..], &mut |row| {
            seen.push((row.id, row.task_id.map(str::to_owned), row.hash.to_owned()));
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn copied_rows_are_read_in_order_with_their_nulls() {
        let bytes = stream(&[
            (
                1,
                [
                    Some("t1"),
                    Some("time"),
                    Some("a"),
                    Some("k"),
                    Some("{}"),
                    Some("p"),
                    Some("h1"),
                ],
            ),
            (
                2,
                [
                    None,
                    Some("time"),
                    Some("a"),
                    Some("k"),
                    Some(""),
                    Some("h1"),
                    Some("h2"),
                ],
            ),
        ]);
        assert_eq!(
            read(&bytes).unwrap(),
            [(1, Some("t1".into()), "h1".into()), (2, None, "h2".into())]
        );
    }

    #[test]
    fn a_broken_copy_is_named_not_read_as_rows() {
        let good = stream(&[(
            1,
            [
                None,
                Some("t"),
                Some("a"),
                Some("k"),
                Some("{}"),
                Some("p"),
                Some("h"),
            ],
        )]);
        let cut = read(&good[..good.len() - 5]).unwrap_err();
        assert!(cut.to_string().contains("broke off"), "{cut}");
        let mut other = good.clone();
        other[0] = b'X';
        assert!(
            read(&other)
                .unwrap_err()
                .to_string()
                .contains("binary format")
        );
        let mut columns = good.clone();
        columns[19..21].copy_from_slice(&3i16.to_be_bytes());
        assert!(
            read(&columns)
                .unwrap_err()
                .to_string()
                .contains("3 columns")
        );
        let mut bad_text = stream(&[(
            1,
            [
                None,
                Some("t"),
                Some("a"),
                Some("k"),
                Some("x"),
                Some("p"),
                Some("h"),
            ],
        )]);
        let at = bad_text.iter().rposition(|b| *b == b'x').unwrap();
        bad_text[at] = 0xff;
        assert!(
            read(&bad_text)
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
    }
}
