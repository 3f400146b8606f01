//! NDJSON: one object per record, keys exactly the WMI property names plus the record's extra
//! keys, `PSComputerName` and `CimClass` (DESIGN §5). Integers are exact, nil is `null`.

use std::io::{self, Write};

use serde::Serialize;

use super::Record;

pub(super) fn write<W: Write, B: ?Sized + Serialize>(
    out: &mut W,
    record: &Record<'_, B>,
) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}
