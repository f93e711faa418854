//! Keyset paging of lists, newest first: a page ends with a cursor naming its last row
//! (creation time and id), and the next page starts after it. New rows never push old ones
//! out of reach, as an offset or a "newest N" list would.

use super::*;

/// Where a page of a list ended: the last row's creation time (microseconds since the epoch)
/// and id. Travels as an opaque string (`<micros>.<id hex>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The row's `created_at`, microseconds since the epoch.
    pub micros: i64,
    /// The row's id.
    pub id: B256,
}

impl Cursor {
    /// The cursor as the API sends it.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.micros, hex::encode(self.id))
    }

    /// Parses a cursor the API sent; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('.')?;
        let id: [u8; 32] = hex::decode(id).ok()?.try_into().ok()?;
        Some(Self { micros: micros.parse().ok()?, id: B256::from(id) })
    }
}

/// A page of a list: its rows and, when more follow, the cursor to ask for them.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows, newest first.
    pub rows: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

/// The SQL column of a row's cursor time, for table alias `t`.
pub(super) fn cursor_micros(t: &str) -> String {
    format!("(extract(epoch from {t}.created_at) * 1000000)::bigint AS cursor_micros")
}

/// The SQL condition "after the cursor" (`$m` micros, `$i` id, both NULL on the first page)
/// in the order `created_at DESC, id`, for table alias `t`.
pub(super) fn after_cursor(t: &str, m: usize, i: usize) -> String {
    format!(
        "(${m}::bigint IS NULL OR {t}.created_at < 'epoch'::timestamptz + ${m} * interval '1 microsecond'
          OR ({t}.created_at = 'epoch'::timestamptz + ${m} * interval '1 microsecond' AND {t}.id > ${i}))"
    )
}

/// Cuts `rows` (fetched with a limit of `limit + 1`, each with its cursor) to a page.
pub(super) fn page_of<T>(mut rows: Vec<(Cursor, T)>, limit: i64) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next = if more { rows.last().map(|(c, _)| *c) } else { None };
    Page { rows: rows.into_iter().map(|(_, r)| r).collect(), next }
}

/// The cursor of a fetched row (columns `cursor_micros` and `id`).
pub(super) fn cursor_of(row: &sqlx::postgres::PgRow) -> sqlx::Result<Cursor> {
    Ok(Cursor { micros: row.get("cursor_micros"), id: b256(row.get::<&[u8], _>("id"))? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let c = Cursor { micros: 1_764_000_000_123_456, id: B256::repeat_byte(0xab) };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in ["", "12", "x.ab", "12.zz", "12.abab", &format!("12.{}00", hex::encode([1u8; 32]))] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_page_names_a_cursor_only_when_more_follow() {
        let c = |n: u8| (Cursor { micros: i64::from(n), id: B256::repeat_byte(n) }, n);
        let page = page_of(vec![c(3), c(2), c(1)], 2);
        assert_eq!((page.rows, page.next.map(|n| n.micros)), (vec![3, 2], Some(2)));
        let last = page_of(vec![c(1)], 2);
        assert_eq!((last.rows, last.next), (vec![1], None));
    }
}
