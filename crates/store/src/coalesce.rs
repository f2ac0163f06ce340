//! Point reads that arrive together share one statement (PostgreSQL).
//!
//! Under load, most of what a point read costs on PostgreSQL is not the lookup but what goes
//! around it: a round trip to another process, the protocol, an implicit transaction, and the
//! wake-ups on both sides. Reads of the same statement text run as they come while fewer than
//! [`RUNNING_PER_STATEMENT`] of them are running; one that arrives while that many are running
//! waits, and when one of them ends, every read then waiting (up to [`MOST_PER_BATCH`]) is
//! answered by one statement that runs the read once per set of arguments:
//!
//! ```sql
//! SELECT batch_args.batch_n, one.* FROM unnest((SELECT $1::text[]), ...) WITH ORDINALITY
//!     AS batch_args(a1, ..., batch_n)
//! CROSS JOIN LATERAL (SELECT * FROM (<the read, $k read as batch_args.ak>) AS r LIMIT 1) AS one
//! ```
//!
//! Once [`SECOND_BATCH_AT`] reads wait, their batch does not wait for the running read or
//! batch to end: it starts at once, beside it, on another connection, and so does each next
//! batch while that many wait. Under a steady load, two database processes then work at once
//! (and can run on two cores), while a batch beside another holds at least that many reads, so
//! that it costs the database little per read; a light load never starts one.
//!
//! What a read sees is unchanged: the statement that answers it starts after the read was
//! asked for, so it sees every write committed before then (a revoked token is refused at once,
//! as before). A light load never waits: with nothing running, a read runs alone, as its own
//! statement. A read whose arguments another read could not share a statement with (a NUL byte,
//! which PostgreSQL refuses in text; a null; none) or whose text the rewriting could misread
//! ([`rewritable`], looked at once a read of the text would wait) always runs alone; a batch that the database refuses as a whole for a value
//! it was given runs again in halves, down to the read whose value it was, so that no read fails
//! for another's arguments.
//!
//! Bounds: when no read or batch of a text has started for [`STALLED_AFTER`] while reads of it
//! wait (one is stuck, or slow), another runs beside it, up to [`MOST_RUNNING`] at once: the
//! next read that arrives, or else a task that one of the waiting reads starts, and its end
//! answers those waiting. At most [`MOST_WAITING`] reads of one text wait (the next run alone).
//! A waiting read gives up as unavailable when it has no answer within the limit its caller sets.
//! A task dropped before it ran its batch (a runtime shutting down) tells its reads so.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::shared::Arg;
use crate::{Result, StoreError};

/// Reads of one statement text that run at once before the next ones wait to share one.
pub(crate) const RUNNING_PER_STATEMENT: usize = 1;

/// Reads of one statement text waiting at which their batch starts at once, beside the read or
/// batch running, on another connection, instead of waiting for it to end.
pub(crate) const SECOND_BATCH_AT: usize = 8;

/// The most reads one statement answers.
pub(crate) const MOST_PER_BATCH: usize = 64;

/// When no read or batch of a statement text has started for this long while reads of it wait
/// (one is stuck: a network that stopped answering; or slow), another runs beside it.
pub(crate) const STALLED_AFTER: Duration = Duration::from_millis(20);

/// The most reads or batches of one statement text that run at once when some are stuck.
pub(crate) const MOST_RUNNING: usize = 4;

/// The most reads of one statement text that wait; beyond, a read runs alone (and waits for a
/// connection of the pool, within the acquire timeout, as any statement does).
pub(crate) const MOST_WAITING: usize = 4 * MOST_PER_BATCH;

/// An argument of a waiting read, owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl Value {
    pub(crate) fn arg(&self) -> Arg<'_> {
        match self {
            Value::Text(v) => Arg::Text(v),
            Value::Int(v) => Arg::Int(*v),
            Value::Bool(v) => Arg::Bool(*v),
        }
    }

    /// PostgreSQL's name of the array type this argument travels in.
    pub(crate) fn array_type(&self) -> &'static str {
        match self {
            Value::Text(_) => "text[]",
            Value::Int(_) => "int8[]",
            Value::Bool(_) => "bool[]",
        }
    }
}

/// Whether a read with `args` can share a statement: not with a null, nor with text
/// PostgreSQL would refuse (a NUL byte), which would fail the whole statement and every read in
/// it; nor without arguments, when there is nothing to tell the reads apart.
pub(crate) fn shareable(args: &[Arg<'_>]) -> bool {
    !args.is_empty() && args.iter().all(|a| value(a).is_some())
}

/// `args` owned, or `None` when the read cannot share a statement ([`shareable`]). Called only
/// for a read that waits: a read that runs alone copies nothing.
pub(crate) fn values(args: &[Arg<'_>]) -> Option<Vec<Value>> {
    args.iter().map(|a| value(a).map(Value::owned)).collect()
}

/// An argument that can travel in an array, borrowed.
enum Shared<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
}

impl Value {
    fn owned(v: Shared<'_>) -> Self {
        match v {
            Shared::Text(t) => Value::Text(t.to_owned()),
            Shared::Int(i) => Value::Int(i),
            Shared::Bool(b) => Value::Bool(b),
        }
    }
}

/// `a` as it would travel in an array, or `None` for a null or text with a NUL byte.
fn value<'a>(a: &Arg<'a>) -> Option<Shared<'a>> {
    match *a {
        Arg::Text(v) if !v.contains('\0') => Some(Shared::Text(v)),
        Arg::Int(v) => Some(Shared::Int(v)),
        Arg::Bool(v) => Some(Shared::Bool(v)),
        Arg::OptText(_) | Arg::OptInt(_) | Arg::Text(_) => None,
    }
}

/// Whether [`batched_sql`] can rewrite `sql`: a query (`SELECT` or `WITH` first) with no comment,
/// double-quoted name, escaped or dollar-quoted string, nor `$` other than a placeholder, whose
/// text it could misread; no `;`, which would end the statement it is nested in; and no name
/// beginning `batch_`, the rewriting's own (`batch_args` would be read as the arguments' rows).
pub(crate) fn rewritable(sql: &str) -> bool {
    let text = sql.trim_start();
    let starts = |word: &str| {
        text.get(..word.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(word))
    };
    if !(starts("select") || starts("with")) || sql.to_ascii_lowercase().contains("batch_") {
        return false;
    }
    let mut quoted = false;
    let mut previous = ' ';
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let clear = match c {
            // `E'...'`, whose backslashes may escape a quote.
            '\'' if !quoted && matches!(previous, 'E' | 'e') => false,
            '\'' => {
                quoted = !quoted;
                true
            }
            // A backslash escapes a quote unless `standard_conforming_strings` is on.
            '\\' if quoted => false,
            _ if quoted => true,
            '"' | ';' => false,
            '-' => next != Some('-'),
            '/' => next != Some('*'),
            '$' => {
                next.is_some_and(|d| d.is_ascii_digit())
                    && !previous.is_alphanumeric()
                    && previous != '_'
            }
            _ => true,
        };
        if !clear {
            return false;
        }
        previous = c;
    }
    !quoted
}

/// Whether two reads' arguments travel in the same array types.
pub(crate) fn same_types(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| std::mem::discriminant(x) == std::mem::discriminant(y))
}

/// The statement that runs `sql` once for each row of `types.len()` arrays bound to `$1`, `$2`,
/// ...: `sql`'s placeholders read the row's values, and its first row comes back with the
/// row's 1-based number in `batch_n`. Text in single quotes is left as it is.
pub(crate) fn batched_sql(sql: &str, types: &[&str]) -> String {
    let mut inner = String::with_capacity(sql.len() + 64);
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '$' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            inner.push_str("batch_args.a");
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                inner.push(d);
            }
            continue;
        }
        inner.push(c);
    }
    // Each array is read through a scalar subquery, so that the planner does not see its
    // length. Given the value, it would count the batch's rows exactly, and a plan made for the
    // arguments (a custom plan: two rows, say) would always look cheaper than the plan made
    // once for any arguments (which assumes ten), so PostgreSQL would plan every batch anew:
    // that planning cost several times the statement's execution. Hidden, both plans assume
    // ten rows, and after its first five executions on a connection the statement keeps its
    // generic plan (the same nested loop of index lookups).
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("(SELECT ${}::{t})", i + 1))
        .collect();
    let names: Vec<String> = (1..=types.len()).map(|i| format!("a{i}")).collect();
    format!(
        "SELECT batch_args.batch_n, one.* FROM unnest({}) WITH ORDINALITY \
         AS batch_args({}, batch_n) \
         CROSS JOIN LATERAL (SELECT * FROM ({inner}) AS r LIMIT 1) AS one",
        arrays.join(", "),
        names.join(", "),
    )
}

/// The same error, for each read of a batch that failed as a whole.
pub(crate) fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Unavailable(source) => StoreError::Unavailable(source.to_string().into()),
        StoreError::InvalidInput(m) => StoreError::InvalidInput(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
    }
}

/// A read waiting to be answered by a batch.
pub(crate) struct Waiting<R> {
    pub args: Vec<Value>,
    pub reply: oneshot::Sender<Result<Option<R>>>,
}

/// Runs batches of one statement text and answers each of their reads.
pub(crate) trait Runner: Clone + Send + Sync + 'static {
    /// The row type a read is answered with.
    type Row: Send + 'static;

    fn run(&self, sql: &str, batch: Vec<Waiting<Self::Row>>) -> impl Future<Output = ()> + Send;
}

/// One statement text's reads: how many are running, and those waiting.
struct Statement<R> {
    /// The text, shared with the map's key and the places of its reads.
    text: Arc<str>,
    /// Whether [`batched_sql`] can rewrite the text: looked at when a read of it would first
    /// wait, not on every read (it scans the whole text).
    rewritable: Option<bool>,
    running: usize,
    /// When the last read or batch of it started.
    started: Instant,
    waiting: Vec<Waiting<R>>,
}

/// The reads of every statement text that has one running.
pub(crate) struct Coalescer<N: Runner> {
    runner: N,
    /// [`STALLED_AFTER`], but in tests that need no read to be taken for stuck.
    stalled_after: Duration,
    by_sql: Mutex<HashMap<Arc<str>, Statement<N::Row>>>,
}

/// What a read does: run alone (holding one of its statement's places), or wait for a batch,
/// or run alone without a place when its text cannot be shared ([`rewritable`]).
pub(crate) enum Turn<N: Runner> {
    Run(Place<N>),
    Wait(oneshot::Receiver<Result<Option<N::Row>>>),
    Alone,
}

impl<N: Runner> Coalescer<N> {
    pub(crate) fn new(runner: N, stalled_after: Duration) -> Arc<Self> {
        Arc::new(Self {
            runner,
            stalled_after,
            by_sql: Mutex::new(HashMap::new()),
        })
    }

    /// What runs the batches.
    pub(crate) fn runner(&self) -> &N {
        &self.runner
    }

    /// A read of `sql` with `args` ([`shareable`] ones) arrives.
    pub(crate) fn enter(self: &Arc<Self>, sql: &str, args: &[Arg<'_>]) -> Turn<N> {
        let mut by_sql = self.lock();
        let statement = match by_sql.get_mut(sql) {
            Some(s) => s,
            None => {
                let text: Arc<str> = Arc::from(sql);
                by_sql.entry(Arc::clone(&text)).or_insert(Statement {
                    text,
                    rewritable: None,
                    running: 0,
                    started: Instant::now(),
                    waiting: Vec::new(),
                })
            }
        };
        if statement.running < RUNNING_PER_STATEMENT
            || (statement.running < MOST_RUNNING
                && statement.started.elapsed() >= self.stalled_after)
        {
            statement.running += 1;
            statement.started = Instant::now();
            return Turn::Run(Place {
                coalescer: Arc::clone(self),
                sql: Arc::clone(&statement.text),
                hand_on: true,
                beside: false,
            });
        }
        // Beyond the most that wait, a read runs alone: it takes no place, so that it starts no
        // runner of the waiting reads (at most `MOST_RUNNING` run).
        if statement.waiting.len() >= MOST_WAITING
            || !*statement.rewritable.get_or_insert_with(|| rewritable(sql))
        {
            return Turn::Alone;
        }
        // Arguments that could not be shared (checked before, by `shareable`) run alone.
        let Some(args) = values(args) else {
            return Turn::Alone;
        };
        let (reply, answer) = oneshot::channel();
        statement.waiting.push(Waiting { args, reply });
        if statement.running == RUNNING_PER_STATEMENT && statement.waiting.len() >= SECOND_BATCH_AT
        {
            // Without a runtime the batch could not start, and its place, dropped, would
            // abandon the reads waiting: they wait for the running one instead.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                statement.running += 1;
                let place = Place {
                    coalescer: Arc::clone(self),
                    sql: Arc::clone(&statement.text),
                    hand_on: false,
                    beside: true,
                };
                drop(by_sql);
                drop(runtime.spawn(place.run_waiting()));
            }
        }
        Turn::Wait(answer)
    }

    /// The answer to a read that waits ([`Turn::Wait`]) on `sql`, or `None` when none comes
    /// within `limit`. Each time it has waited [`Coalescer::stalled_after`], it starts another
    /// runner of the reads waiting if none has started meanwhile ([`MOST_RUNNING`] at most).
    pub(crate) async fn answer(
        self: &Arc<Self>,
        sql: &str,
        mut answer: oneshot::Receiver<Result<Option<N::Row>>>,
        limit: Duration,
    ) -> Option<Result<Option<N::Row>>> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match tokio::time::timeout(left.min(self.stalled_after), &mut answer).await {
                Ok(answered) => return answered.ok(),
                Err(_) => self.unstick(sql),
            }
        }
    }

    /// Starts another runner of `sql`'s waiting reads, on a task of its own, if reads wait, none
    /// has started for [`Coalescer::stalled_after`] and fewer than [`MOST_RUNNING`] run.
    fn unstick(self: &Arc<Self>, sql: &str) {
        let text = {
            let mut by_sql = self.lock();
            let Some(statement) = by_sql.get_mut(sql) else {
                return;
            };
            if statement.waiting.is_empty()
                || statement.running >= MOST_RUNNING
                || statement.started.elapsed() < self.stalled_after
            {
                return;
            }
            statement.running += 1;
            statement.started = Instant::now();
            Arc::clone(&statement.text)
        };
        let place = Place {
            coalescer: Arc::clone(self),
            sql: text,
            hand_on: false,
            beside: false,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(place.run_waiting()));
        }
    }

    /// The map, whatever a thread that panicked while holding it left (every change to it is
    /// complete before the lock is let go).
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Statement<N::Row>>> {
        self.by_sql
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next batch of `sql`'s waiting reads, if any.
    /// For a place [`Place::beside`] another, none unless [`SECOND_BATCH_AT`] reads wait: the
    /// other place runs fewer. A batch beside another also does not count as a start for
    /// [`Coalescer::unstick`], so that waves of reads beside a stuck one do not keep putting
    /// off the place that would run every batch while it is stuck.
    fn take(&self, sql: &str, beside: bool) -> Option<Vec<Waiting<N::Row>>> {
        let mut by_sql = self.lock();
        let statement = by_sql.get_mut(sql)?;
        // Reads given up while they waited need no answer.
        statement.waiting.retain(|w| !w.reply.is_closed());
        if statement.waiting.is_empty() {
            return None;
        }
        if beside {
            if statement.running > 1 && statement.waiting.len() < SECOND_BATCH_AT {
                return None;
            }
        } else {
            statement.started = Instant::now();
        }
        let n = statement.waiting.len().min(MOST_PER_BATCH);
        Some(statement.waiting.drain(..n).collect())
    }

    /// A place of `sql` is given back: kept when reads are waiting (whoever holds it runs
    /// them), freed otherwise. A place [`Place::beside`] another is kept only while
    /// [`SECOND_BATCH_AT`] reads wait, or when it is the only one left. `Some` (whether the
    /// place kept is beside another) when kept.
    fn give_back(&self, sql: &str, beside: bool) -> Option<bool> {
        let mut by_sql = self.lock();
        let statement = by_sql.get_mut(sql)?;
        if !statement.waiting.is_empty() {
            if !beside || statement.running == 1 {
                return Some(false);
            }
            statement.waiting.retain(|w| !w.reply.is_closed());
            if statement.waiting.len() >= SECOND_BATCH_AT {
                return Some(true);
            }
        }
        statement.running -= 1;
        if statement.running == 0 {
            by_sql.remove(sql);
        }
        None
    }

    /// A place of `sql` is given back by a task that did not run to its end (the runtime is
    /// shutting down): the reads waiting are dropped, and hear that their answer will not come.
    fn abandon(&self, sql: &str) {
        let mut by_sql = self.lock();
        let Some(statement) = by_sql.get_mut(sql) else {
            return;
        };
        statement.waiting.clear();
        statement.running -= 1;
        if statement.running == 0 {
            by_sql.remove(sql);
        }
    }

    /// How many reads wait now, over every statement text.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().values().map(|s| s.waiting.len()).sum()
    }

    /// How many statement texts have a read running.
    #[cfg(test)]
    pub(crate) fn statements(&self) -> usize {
        self.lock().len()
    }
}

/// One of a statement text's running places. Given back (dropped, also when the read holding
/// it is given up half-way), it runs the reads that wait meanwhile, on a task of its own, so
/// that no read waits for a place that nobody holds.
pub(crate) struct Place<N: Runner> {
    coalescer: Arc<Coalescer<N>>,
    /// The map's key of its text.
    sql: Arc<str>,
    /// Given back, it hands the reads waiting on to a new task. Not so for the place of such a
    /// task until it has run them: dropped before (its runtime shutting down), it drops them.
    hand_on: bool,
    /// Taken beside the one running because [`SECOND_BATCH_AT`] reads waited: it runs one
    /// batch, and another only while that many wait.
    beside: bool,
}

impl<N: Runner> Place<N> {
    /// Runs batches until none is waiting.
    async fn run_waiting(mut self) {
        while let Some(batch) = self.coalescer.take(&self.sql, self.beside) {
            self.coalescer.runner.run(&self.sql, batch).await;
            if self.beside {
                break;
            }
        }
        self.hand_on = true;
    }
}

impl<N: Runner> Drop for Place<N> {
    fn drop(&mut self) {
        if !self.hand_on {
            self.coalescer.abandon(&self.sql);
            return;
        }
        let Some(beside) = self.coalescer.give_back(&self.sql, self.beside) else {
            return;
        };
        let next = Place {
            coalescer: Arc::clone(&self.coalescer),
            sql: Arc::clone(&self.sql),
            hand_on: false,
            beside,
        };
        // Without a runtime, or on one shutting down (which drops the task unpolled), `next`
        // is dropped before it runs, and abandons the waiting reads.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(next.run_waiting()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs nothing, ever.
    #[derive(Clone)]
    struct Never;

    impl Runner for Never {
        type Row = ();

        async fn run(&self, _: &str, _: Vec<Waiting<()>>) {
            std::future::pending::<()>().await;
        }
    }

    #[test]
    fn a_runtime_shut_down_with_reads_waiting_leaves_nothing_behind() {
        let coalescer = Coalescer::new(Never, STALLED_AFTER);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (waiting, stuck) = runtime.block_on(async {
            let Turn::Run(place) = coalescer.enter("SELECT a FROM t WHERE b = $1", &[Arg::Int(1)])
            else {
                panic!("the first read runs");
            };
            // Holds its place until the runtime drops it.
            tokio::spawn(async move {
                let _place = place;
                std::future::pending::<()>().await;
            });
            tokio::task::yield_now().await;
            let Turn::Wait(waiting) =
                coalescer.enter("SELECT a FROM t WHERE b = $1", &[Arg::Int(2)])
            else {
                panic!("the second read waits");
            };
            // A batch that never ends, with one read in it.
            let Turn::Run(place) = coalescer.enter("SELECT a FROM r WHERE b = $1", &[Arg::Int(1)])
            else {
                panic!("the first read runs");
            };
            let Turn::Wait(stuck) = coalescer.enter("SELECT a FROM r WHERE b = $1", &[Arg::Int(2)])
            else {
                panic!("the second read waits");
            };
            drop(place);
            tokio::task::yield_now().await;
            assert_eq!(coalescer.waiting(), 1, "the batch took its read");
            (waiting, stuck)
        });
        drop(runtime);
        assert!(waiting.blocking_recv().is_err(), "told no answer comes");
        assert!(stuck.blocking_recv().is_err(), "told no answer comes");
        assert_eq!(coalescer.statements(), 0, "no place left held");
    }

    /// Notes each batch's size, and answers it once let go.
    #[derive(Clone)]
    struct Held {
        sizes: Arc<Mutex<Vec<usize>>>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Held {
        /// No batch is answered until [`Held::gate`] lets it go.
        fn closed() -> Self {
            Self {
                sizes: Arc::new(Mutex::new(Vec::new())),
                gate: Arc::new(tokio::sync::Semaphore::new(0)),
            }
        }

        fn sizes(&self) -> Vec<usize> {
            self.sizes.lock().expect("sizes").clone()
        }
    }

    impl Runner for Held {
        type Row = ();

        async fn run(&self, _: &str, batch: Vec<Waiting<()>>) {
            self.sizes.lock().expect("sizes").push(batch.len());
            self.gate.acquire().await.expect("gate").forget();
            for w in batch {
                let _ = w.reply.send(Ok(Some(())));
            }
        }
    }

    #[tokio::test]
    async fn enough_reads_waiting_start_their_batch_beside_the_running_one() {
        const SQL: &str = "SELECT a FROM t WHERE b = $1";
        let held = Held::closed();
        let sizes = || held.sizes();
        let running = |c: &Coalescer<Held>| c.lock().get(SQL).map(|s| s.running);
        let coalescer = Coalescer::new(held.clone(), Duration::from_secs(3600));
        let mut key = 0;
        let mut wait = |n: usize| {
            (0..n)
                .map(|_| {
                    key += 1;
                    match coalescer.enter(SQL, &[Arg::Int(key)]) {
                        Turn::Wait(answer) => answer,
                        _ => panic!("read {key} waits"),
                    }
                })
                .collect::<Vec<_>>()
        };
        let Turn::Run(first) = coalescer.enter(SQL, &[Arg::Int(0)]) else {
            panic!("the first read runs");
        };
        // Fewer than enough wait for the running read.
        let mut early = wait(SECOND_BATCH_AT - 1);
        tokio::task::yield_now().await;
        assert_eq!(sizes(), Vec::<usize>::new());
        assert_eq!(running(&coalescer), Some(1));
        // One more, and their batch starts while the first read still runs.
        early.extend(wait(1));
        tokio::task::yield_now().await;
        assert_eq!(sizes(), [SECOND_BATCH_AT]);
        assert_eq!(running(&coalescer), Some(2));
        // While both run, the next reads wait; fewer than enough start nothing.
        let late = wait(SECOND_BATCH_AT - 1);
        tokio::task::yield_now().await;
        assert_eq!(sizes(), [SECOND_BATCH_AT]);
        // The batch beside ends: its reads are answered, and its place is freed, since fewer
        // than enough wait; they wait for the first read's place.
        held.gate.add_permits(1);
        for answer in early {
            assert!(matches!(answer.await, Ok(Ok(Some(())))));
        }
        tokio::task::yield_now().await;
        assert_eq!(running(&coalescer), Some(1));
        assert_eq!(sizes(), [SECOND_BATCH_AT]);
        drop(first);
        tokio::task::yield_now().await;
        assert_eq!(sizes(), [SECOND_BATCH_AT, SECOND_BATCH_AT - 1]);
        held.gate.add_permits(1);
        for answer in late {
            assert!(matches!(answer.await, Ok(Ok(Some(())))));
        }
        tokio::task::yield_now().await;
        assert_eq!(coalescer.statements(), 0, "every place given back");
    }

    #[tokio::test]
    async fn a_batch_beside_another_runs_only_with_enough_reads_still_waiting() {
        const SQL: &str = "SELECT a FROM t WHERE b = $1";
        let held = Held::closed();
        let coalescer = Coalescer::new(held.clone(), Duration::from_secs(3600));
        let Turn::Run(first) = coalescer.enter(SQL, &[Arg::Int(0)]) else {
            panic!("the first read runs");
        };
        let mut answers: Vec<_> = (1..=SECOND_BATCH_AT)
            .map(
                |i| match coalescer.enter(SQL, &[Arg::Int(i64::try_from(i).unwrap())]) {
                    Turn::Wait(answer) => answer,
                    _ => panic!("read {i} waits"),
                },
            )
            .collect();
        // One of them gives up before the batch beside starts: too few are left for it.
        drop(answers.pop());
        tokio::task::yield_now().await;
        assert_eq!(held.sizes(), Vec::<usize>::new());
        assert_eq!(coalescer.lock().get(SQL).map(|s| s.running), Some(1));
        // They are answered together once the first read ends.
        drop(first);
        tokio::task::yield_now().await;
        assert_eq!(held.sizes(), [SECOND_BATCH_AT - 1]);
        held.gate.add_permits(1);
        for answer in answers {
            assert!(matches!(answer.await, Ok(Ok(Some(())))));
        }
        tokio::task::yield_now().await;
        assert_eq!(coalescer.statements(), 0, "every place given back");
    }

    #[test]
    fn placeholders_read_the_rows_values_and_quoted_text_is_left_alone() {
        let sql = batched_sql(
            "SELECT 1 AS one FROM t WHERE a = $1 AND b = $12 AND c = '$2' AND d = $2",
            &["text[]", "int8[]"],
        );
        assert_eq!(
            sql,
            "SELECT batch_args.batch_n, one.* FROM unnest((SELECT $1::text[]), (SELECT $2::int8[])) WITH ORDINALITY \
             AS batch_args(a1, a2, batch_n) CROSS JOIN LATERAL (SELECT * FROM \
             (SELECT 1 AS one FROM t WHERE a = batch_args.a1 AND b = batch_args.a12 \
             AND c = '$2' AND d = batch_args.a2) AS r LIMIT 1) AS one"
        );
    }

    #[test]
    fn reads_that_could_fail_a_shared_statement_run_alone() {
        assert_eq!(
            values(&[Arg::Text("a"), Arg::Int(3), Arg::Bool(true)]),
            Some(vec![
                Value::Text("a".into()),
                Value::Int(3),
                Value::Bool(true)
            ])
        );
        assert!(shareable(&[Arg::Int(1)]));
        assert!(rewritable(
            "SELECT a FROM t WHERE b = $1 AND c = 'it''s $2' AND d = $2"
        ));
        assert!(rewritable("  select a FROM t WHERE b = $1 AND c = 'x;y'"));
        assert!(rewritable(
            "WITH k AS (SELECT $1::text AS v) SELECT a FROM t, k WHERE b = k.v"
        ));
        for sql in [
            "SELECT a FROM t WHERE b = $1 -- the key",
            "SELECT a FROM t WHERE b = $1 /* the key */",
            "SELECT \"a\" FROM t WHERE b = $1",
            "SELECT a FROM t WHERE b = $1 AND c = E'\\' $1'",
            "SELECT a FROM t WHERE b = $x$ $1 $x$",
            "SELECT a$1 FROM t WHERE b = $1",
            "SELECT a FROM t WHERE b = 'open",
            "SELECT a FROM t WHERE b = 'a\\' OR $1'",
            "SELECT a FROM t WHERE b = $1;",
            "SELECT a FROM t WHERE b = $1; DELETE FROM t",
            "SELECT a AS batch_n FROM t WHERE b = $1",
            "SELECT a FROM t AS Batch_Args WHERE b = $1",
            "UPDATE t SET a = 1 WHERE b = $1 RETURNING a",
            "DELETE FROM t WHERE b = $1 RETURNING a",
            "",
            "SEL",
        ] {
            assert!(!rewritable(sql), "{sql}");
        }
        assert!(!shareable(&[]));
        assert_eq!(values(&[Arg::Text("a\0b")]), None);
        assert_eq!(values(&[Arg::OptText(Some("a"))]), None);
        assert_eq!(values(&[Arg::OptInt(None)]), None);
        assert!(same_types(&[Value::Int(1)], &[Value::Int(2)]));
        assert!(!same_types(&[Value::Int(1)], &[Value::Text("1".into())]));
        assert!(!same_types(&[Value::Int(1)], &[]));
    }

    #[test]
    fn reads_beyond_the_most_that_wait_run_alone() {
        let coalescer = Coalescer::new(Never, Duration::from_secs(3600));
        let Turn::Run(first) = coalescer.enter("SELECT a FROM t WHERE b = $1", &[Arg::Int(0)])
        else {
            panic!("the first read runs");
        };
        let mut answers = Vec::new();
        for i in 1..=MOST_WAITING {
            let Turn::Wait(answer) = coalescer.enter(
                "SELECT a FROM t WHERE b = $1",
                &[Arg::Int(i64::try_from(i).unwrap())],
            ) else {
                panic!("read {i} waits");
            };
            answers.push(answer);
        }
        for i in 0..10 {
            assert!(
                matches!(
                    coalescer.enter("SELECT a FROM t WHERE b = $1", &[Arg::Int(-i)]),
                    Turn::Alone
                ),
                "read {i} past the most that wait runs alone, taking no place"
            );
        }
        assert_eq!(coalescer.waiting(), MOST_WAITING);
        let running = coalescer
            .lock()
            .get("SELECT a FROM t WHERE b = $1")
            .map(|s| s.running);
        assert_eq!(running, Some(1), "one place, the first read's");
        drop(first);
        drop(answers);
    }

    #[test]
    fn a_text_the_rewriting_could_misread_never_waits() {
        let coalescer = Coalescer::new(Never, STALLED_AFTER);
        let misread = "SELECT a FROM t WHERE b = $1 -- the key";
        let Turn::Run(first) = coalescer.enter(misread, &[Arg::Int(1)]) else {
            panic!("the first read runs");
        };
        for i in 2..5 {
            assert!(
                matches!(coalescer.enter(misread, &[Arg::Int(i)]), Turn::Alone),
                "read {i} runs alone, beside the first"
            );
        }
        assert_eq!(coalescer.waiting(), 0);
        let Turn::Run(other) = coalescer.enter("SELECT a FROM t WHERE b = $1", &[Arg::Int(1)])
        else {
            panic!("the first read runs");
        };
        assert!(matches!(
            coalescer.enter("SELECT a FROM t WHERE b = $1", &[Arg::Int(2)]),
            Turn::Wait(_)
        ));
        assert_eq!(coalescer.waiting(), 1);
        drop(first);
        assert_eq!(
            coalescer.statements(),
            1,
            "the misread text's place is free"
        );
        drop(other);
    }
}
