//! `herald import users FILE`: a customer base brought into a running Herald through
//! `importUsers`, a chunk at a time.
//!
//! The file is CSV with a header (`name`, `email`, and any of the preference columns) or
//! NDJSON (one `{"name", "email", "preferences"}` object a line); `-` reads standard input.
//! It is streamed: a chunk is read, sent and counted before the next is read. A row that
//! cannot be read, or that the API refuses, is reported with its line number and reason,
//! and the rest of its chunk is sent again without it; a chunk that fails for another
//! reason (the gateway unreachable, busy or failing) is tried again, a few times, with a
//! growing pause.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{Admin, Client, GraphqlError};

/// The most rows one `importUsers` call takes.
pub const CHUNK_ROWS: usize = 1_000;
/// The most bytes of rows one call carries (the gateway takes 256 KiB bodies by default).
const CHUNK_BYTES: usize = 192 * 1024;
/// Tries of a chunk that fails for a reason of the server's or the network's.
const TRIES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

pub struct ImportOptions {
    pub admin: Admin,
    /// A path, or `-` for standard input.
    pub file: String,
    /// None: from the file's extension, or from its first line.
    pub format: Option<Format>,
    /// Rows per call, at most [`CHUNK_ROWS`].
    pub chunk: usize,
}

/// A row left out, by its line in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: u64,
    pub skipped: u64,
    pub rejected: Vec<Rejected>,
}

/// One customer as `ImportedUserInput` takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Customer {
    name: String,
    email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preferences: Option<Preferences>,
}

/// `PreferencesInput`: what is left out stays the default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Preferences {
    #[serde(skip_serializing_if = "Option::is_none")]
    promotions: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_updates: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recommendations: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inventory_alerts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    categories: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quiet_hours_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quiet_hours_end: Option<String>,
}

/// A row read from the file: its line, and the customer or why it cannot be read.
type Row = (u64, Result<Customer, String>);

/// Reads rows, a chunk at a time.
trait Rows {
    fn next_row(&mut self) -> anyhow::Result<Option<Row>>;
}

/// Imports the file's customers; the report says what became of every row.
pub async fn import_users(options: ImportOptions) -> anyhow::Result<ImportReport> {
    if options.chunk == 0 || options.chunk > CHUNK_ROWS {
        bail!("--chunk must be 1 to {CHUNK_ROWS}");
    }
    let (input, name): (Box<dyn Read>, &str) = if options.file == "-" {
        (Box::new(std::io::stdin().lock()), "standard input")
    } else {
        let file = std::fs::File::open(&options.file)
            .with_context(|| format!("cannot open {}", options.file))?;
        (Box::new(file), options.file.as_str())
    };
    let mut input = BufReader::new(input);
    let format = match options.format.or_else(|| by_extension(&options.file)) {
        Some(format) => format,
        None => sniff(&mut input).with_context(|| format!("reading {name}"))?,
    };
    let mut rows: Box<dyn Rows> = match format {
        Format::Csv => Box::new(CsvRows::new(input).with_context(|| format!("reading {name}"))?),
        Format::Ndjson => Box::new(NdjsonRows { input, line: 0 }),
    };

    let client = Client::new(&options.admin.url)?;
    let mut session = Session {
        token: client
            .sign_in_admin(&options.admin.email, &options.admin.password)
            .await?,
        admin: options.admin,
    };
    let progress = progress_bar(&options.file, format);
    let mut report = ImportReport::default();
    let mut done = false;
    while !done {
        let mut chunk = Vec::with_capacity(options.chunk);
        let mut bytes = 0;
        while chunk.len() < options.chunk && bytes < CHUNK_BYTES {
            let Some((line, row)) = rows.next_row()? else {
                done = true;
                break;
            };
            progress.inc(1);
            match row {
                Ok(customer) => {
                    bytes += serde_json::to_string(&customer).map_or(0, |text| text.len());
                    chunk.push((line, customer));
                }
                Err(reason) => report.rejected.push(Rejected { line, reason }),
            }
        }
        if !chunk.is_empty() {
            send(&client, &mut session, chunk, &mut report).await?;
        }
    }
    progress.finish_and_clear();
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}

/// A bar over the file's rows (counted first: a quick pass over a file), or a spinner for
/// standard input, whose length is unknown; on stderr, hidden when it is not a terminal.
fn progress_bar(file: &str, format: Format) -> ProgressBar {
    let lines = (file != "-")
        .then(|| std::fs::File::open(file).ok())
        .flatten()
        .map(|f| {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|line| !line.trim().is_empty())
                .count() as u64
        });
    match lines {
        Some(lines) => {
            // A CSV file's first line is its header.
            let rows = match format {
                Format::Csv => lines.saturating_sub(1),
                Format::Ndjson => lines,
            };
            let bar = ProgressBar::new(rows);
            bar.set_style(
                ProgressStyle::with_template(
                    "importing [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        }
        None => {
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} importing: {pos} rows {per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner
        }
    }
}

/// The admin's session: signed in again when its token expires during a long import.
struct Session {
    token: String,
    admin: Admin,
}

/// Sends one chunk: rows the API names as wrong are rejected and the rest sent again;
/// failures of the server or the network are tried again.
async fn send(
    client: &Client,
    session: &mut Session,
    mut chunk: Vec<(u64, Customer)>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let mut tries = 0;
    while !chunk.is_empty() {
        let users: Vec<&Customer> = chunk.iter().map(|(_, customer)| customer).collect();
        let answer = client
            .call(
                Some(&session.token),
                "mutation($i: ImportUsersInput!) { importUsers(input: $i) { created skipped } }",
                json!({ "i": { "users": users } }),
            )
            .await;
        let error = match answer {
            Ok(data) => {
                let count = |field: &str| data["importUsers"][field].as_u64().unwrap_or(0);
                report.created += count("created");
                report.skipped += count("skipped");
                return Ok(());
            }
            Err(e) => e,
        };
        match error.downcast_ref::<GraphqlError>() {
            Some(refused) if !refused.rows.is_empty() => {
                let wrong: BTreeMap<usize, &str> = refused
                    .rows
                    .iter()
                    .map(|(index, message)| (*index, message.as_str()))
                    .collect();
                let mut kept = Vec::with_capacity(chunk.len());
                for (index, (line, customer)) in chunk.into_iter().enumerate() {
                    match wrong.get(&index) {
                        Some(reason) => report.rejected.push(Rejected {
                            line,
                            reason: (*reason).to_owned(),
                        }),
                        None => kept.push((line, customer)),
                    }
                }
                chunk = kept;
            }
            Some(refused) if refused.code == "UNAUTHENTICATED" && tries == 0 => {
                tries += 1;
                session.token = client
                    .sign_in_admin(&session.admin.email, &session.admin.password)
                    .await?;
            }
            Some(refused) if !retryable(&refused.code) => {
                return Err(error.context(format!(
                    "importing the rows of lines {} to {}",
                    chunk[0].0,
                    chunk[chunk.len() - 1].0
                )));
            }
            refused => {
                tries += 1;
                if tries >= TRIES {
                    return Err(error.context(format!("{TRIES} tries of a chunk failed")));
                }
                let wait = refused
                    .and_then(|r| r.retry_after)
                    .map(Duration::from_secs)
                    .unwrap_or_else(|| Duration::from_millis(250 << tries));
                tokio::time::sleep(wait).await;
            }
        }
    }
    Ok(())
}

/// Errors worth trying a chunk again for: the server's, and its being busy.
fn retryable(code: &str) -> bool {
    matches!(code, "INTERNAL" | "RATE_LIMITED" | "UNKNOWN")
}

fn by_extension(file: &str) -> Option<Format> {
    let extension = std::path::Path::new(file)
        .extension()?
        .to_str()?
        .to_ascii_lowercase();
    match extension.as_str() {
        "csv" => Some(Format::Csv),
        "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
        _ => None,
    }
}

/// NDJSON when the first character that is not white space (in the first buffer read,
/// which stays to be read) opens an object; CSV otherwise.
fn sniff(input: &mut impl BufRead) -> std::io::Result<Format> {
    let buffer = input.fill_buf()?;
    let first = buffer.iter().find(|b| !b.is_ascii_whitespace());
    Ok(if first == Some(&b'{') {
        Format::Ndjson
    } else {
        Format::Csv
    })
}

struct NdjsonRows<R> {
    input: R,
    line: u64,
}

impl<R: BufRead> Rows for NdjsonRows<R> {
    fn next_row(&mut self) -> anyhow::Result<Option<Row>> {
        loop {
            let mut text = String::new();
            if self.input.read_line(&mut text).context("reading a line")? == 0 {
                return Ok(None);
            }
            self.line += 1;
            if text.trim().is_empty() {
                continue;
            }
            let row = serde_json::from_str::<Customer>(&text).map_err(|e| e.to_string());
            return Ok(Some((self.line, row)));
        }
    }
}

/// The CSV columns, matched without regard to case, `_` or `-`.
const COLUMNS: [&str; 11] = [
    "name",
    "email",
    "promotions",
    "orderupdates",
    "recommendations",
    "inventoryalerts",
    "categories",
    "channels",
    "timezone",
    "quiethoursstart",
    "quiethoursend",
];

/// Where the lines of what was read so far end, so that a record's byte offset gives its
/// line as an editor counts it (the CSV reader's own count leaves blank lines out).
#[derive(Default)]
struct LineEnds {
    /// Offsets of the newlines not yet passed by a record.
    ahead: VecDeque<u64>,
    /// Newlines already passed.
    passed: u64,
    read: u64,
}

impl LineEnds {
    /// The line (from 1) of a record the reader says starts at `offset` (where it resumed
    /// reading: on the terminator of a blank line before it, if there is one); offsets
    /// must not go back.
    fn line_of(&mut self, offset: u64) -> u64 {
        while self.ahead.front().is_some_and(|end| *end <= offset) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

/// Reads through, noting where lines end.
struct Counting<R> {
    inner: R,
    ends: Rc<RefCell<LineEnds>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut ends = self.ends.borrow_mut();
        let start = ends.read;
        for (i, byte) in buf[..n].iter().enumerate() {
            if *byte == b'\n' {
                ends.ahead.push_back(start + i as u64);
            }
        }
        ends.read += n as u64;
        Ok(n)
    }
}

struct CsvRows<R> {
    records: csv::StringRecordsIntoIter<Counting<R>>,
    ends: Rc<RefCell<LineEnds>>,
    /// Each header's column.
    columns: Vec<&'static str>,
}

impl<R: Read> CsvRows<R> {
    fn new(input: R) -> anyhow::Result<CsvRows<R>> {
        let ends = Rc::new(RefCell::new(LineEnds::default()));
        let input = Counting {
            inner: input,
            ends: ends.clone(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers = reader.headers().context("reading the header")?.clone();
        let mut columns = Vec::with_capacity(headers.len());
        for header in &headers {
            let key: String = header
                .chars()
                .filter(|c| !matches!(c, '_' | '-' | ' '))
                .flat_map(char::to_lowercase)
                .collect();
            let Some(column) = COLUMNS.iter().find(|c| **c == key) else {
                bail!(
                    "unknown column '{header}' in the header (known: name, email, promotions, orderUpdates, recommendations, inventoryAlerts, categories, channels, timezone, quietHoursStart, quietHoursEnd)"
                );
            };
            columns.push(*column);
        }
        for required in ["name", "email"] {
            if !columns.contains(&required) {
                bail!("the header has no '{required}' column");
            }
        }
        Ok(CsvRows {
            records: reader.into_records(),
            ends,
            columns,
        })
    }

    fn customer(&self, record: &csv::StringRecord) -> Result<Customer, String> {
        let mut name = None;
        let mut email = None;
        let mut preferences = Preferences::default();
        let mut any = false;
        for (column, value) in self.columns.iter().zip(record.iter()) {
            if value.is_empty() {
                continue;
            }
            let flag = || -> Result<Option<bool>, String> {
                match value.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => Ok(Some(true)),
                    "false" | "no" | "0" => Ok(Some(false)),
                    _ => Err(format!("{column}: '{value}' is not true or false")),
                }
            };
            let list = || {
                Some(
                    value
                        .split(';')
                        .map(|item| item.trim().to_owned())
                        .filter(|item| !item.is_empty())
                        .collect::<Vec<_>>(),
                )
            };
            any |= !matches!(*column, "name" | "email");
            match *column {
                "name" => name = Some(value.to_owned()),
                "email" => email = Some(value.to_owned()),
                "promotions" => preferences.promotions = flag()?,
                "orderupdates" => preferences.order_updates = flag()?,
                "recommendations" => preferences.recommendations = flag()?,
                "inventoryalerts" => preferences.inventory_alerts = flag()?,
                "categories" => preferences.categories = list(),
                "channels" => preferences.channels = list(),
                "timezone" => preferences.timezone = Some(value.to_owned()),
                "quiethoursstart" => preferences.quiet_hours_start = Some(value.to_owned()),
                _ => preferences.quiet_hours_end = Some(value.to_owned()),
            }
        }
        if record.len() > self.columns.len() {
            return Err(format!(
                "{} fields where the header has {}",
                record.len(),
                self.columns.len()
            ));
        }
        Ok(Customer {
            name: name.ok_or("no name")?,
            email: email.ok_or("no email")?,
            preferences: any.then_some(preferences),
        })
    }
}

impl<R> CsvRows<R> {
    fn line_of(&self, position: &csv::Position) -> u64 {
        self.ends.borrow_mut().line_of(position.byte())
    }
}

impl<R: Read> Rows for CsvRows<R> {
    fn next_row(&mut self) -> anyhow::Result<Option<Row>> {
        loop {
            let Some(record) = self.records.next() else {
                return Ok(None);
            };
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    let line = e.position().map_or(0, |p| self.line_of(p));
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        return Err(anyhow::Error::new(e).context("reading the file"));
                    }
                    return Ok(Some((line, Err(e.to_string()))));
                }
            };
            if record.iter().all(str::is_empty) {
                continue;
            }
            let line = record.position().map_or(0, |p| self.line_of(p));
            return Ok(Some((line, self.customer(&record))));
        }
    }
}

/// The report as the command prints it: each rejected row, then the counts.
pub fn summary(report: &ImportReport) -> String {
    let mut text = String::new();
    for rejected in &report.rejected {
        text.push_str(&format!("line {}: {}\n", rejected.line, rejected.reason));
    }
    text.push_str(&format!(
        "{} created, {} skipped (already known), {} rejected",
        report.created,
        report.skipped,
        report.rejected.len()
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(rows: &mut dyn Rows) -> Vec<(u64, Result<serde_json::Value, String>)> {
        let mut all = Vec::new();
        while let Some((line, row)) = rows.next_row().unwrap() {
            all.push((line, row.map(|c| serde_json::to_value(c).unwrap())));
        }
        all
    }

    #[test]
    fn csv_rows_carry_their_line_and_preferences() {
        let text = "Name,E-mail,promotions,categories,quiet_hours_start,quietHoursEnd\n\
                    Ada,ada@example.com,,,,\n\
                    \n\
                    \"Bob, Jr.\",bob@example.com,no,Tea; coffee,22:00,07:00\n\
                    Cy,cy@example.com,maybe,,,\n\
                    Dan,dan@example.com,yes,,,,extra\n";
        let err = CsvRows::new(text.as_bytes()).err().map(|e| e.to_string());
        assert_eq!(err, None);
        let mut rows = CsvRows::new(text.as_bytes()).unwrap();
        let all = read_all(&mut rows);
        assert_eq!(all.len(), 4, "{all:?}");
        assert_eq!(
            all[0],
            (2, Ok(json!({ "name": "Ada", "email": "ada@example.com" })))
        );
        assert_eq!(
            all[1],
            (
                4,
                Ok(
                    json!({ "name": "Bob, Jr.", "email": "bob@example.com", "preferences": {
                    "promotions": false, "categories": ["Tea", "coffee"],
                    "quietHoursStart": "22:00", "quietHoursEnd": "07:00" } })
                )
            )
        );
        assert_eq!(all[2].0, 5);
        assert!(
            all[2].1.as_ref().unwrap_err().contains("'maybe'"),
            "{all:?}"
        );
        assert_eq!(all[3].0, 6);
        assert!(all[3].1.is_err(), "{all:?}");
    }

    #[test]
    fn a_csv_header_must_name_known_columns() {
        let unknown = CsvRows::new("name,email,favourite colour\n".as_bytes())
            .err()
            .unwrap();
        assert!(
            unknown.to_string().contains("favourite colour"),
            "{unknown}"
        );
        let no_email = CsvRows::new("name,timezone\n".as_bytes()).err().unwrap();
        assert!(no_email.to_string().contains("'email'"), "{no_email}");
    }

    #[test]
    fn ndjson_rows_are_checked_for_their_shape() {
        let text = "{\"name\": \"Ada\", \"email\": \"ada@example.com\"}\n\n\
                    not json\n\
                    {\"name\": \"Bob\", \"email\": \"b@example.com\", \"preferences\": {\"timezone\": \"Asia/Tokyo\"}}\n\
                    {\"name\": \"Cy\", \"email\": \"c@example.com\", \"age\": 3}\n";
        let mut rows = NdjsonRows {
            input: text.as_bytes(),
            line: 0,
        };
        let all = read_all(&mut rows);
        assert_eq!(
            all.iter()
                .map(|(line, row)| (*line, row.is_ok()))
                .collect::<Vec<_>>(),
            [(1, true), (3, false), (4, true), (5, false)]
        );
        assert!(all[3].1.as_ref().unwrap_err().contains("age"), "{all:?}");
    }

    #[test]
    fn the_format_comes_from_the_extension_or_the_first_line() {
        assert_eq!(by_extension("shop/customers.CSV"), Some(Format::Csv));
        assert_eq!(by_extension("customers.jsonl"), Some(Format::Ndjson));
        assert_eq!(by_extension("-"), None);
        let mut json = BufReader::new("\n  {\"name\": 1}".as_bytes());
        assert_eq!(sniff(&mut json).unwrap(), Format::Ndjson);
        let mut csv = BufReader::new("name,email\n".as_bytes());
        assert_eq!(sniff(&mut csv).unwrap(), Format::Csv);
    }
}
