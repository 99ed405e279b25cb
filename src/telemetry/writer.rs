//! The log's writer: lines are appended to a buffer in memory by the threads that log them
//! and written out in batches by a thread of its own, so that a request never waits on the
//! terminal or the log collector, nor wakes another thread for each line it logs.
//!
//! The first line into an empty buffer wakes the writer thread, which lets the lines of the
//! next few milliseconds gather before it writes them all with one call; idle, it sleeps
//! without a timer. When the output cannot keep up and [`MAX_PENDING`] bytes are waiting,
//! further lines are dropped and counted, and the count is logged once the output recovers:
//! memory stays bounded and requests never block on the log.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes of log lines kept waiting for the output at most.
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// How long the writer lets lines gather once woken.
const GATHER: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    dropped: u64,
    closing: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock cannot leave `Pending` inconsistent: keep logging.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the log's formatter writes: cheap to clone, one per line.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Keeps the writer thread; dropping it writes what is pending and ends the thread.
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer whose lines reach `output` from a thread of its own.
pub fn batch_writer<W: Write + Send + 'static>(
    output: W,
) -> io::Result<(BatchWriter, WriterGuard)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new()
        .name("credbridge-log".to_owned())
        .spawn({
            let shared = Arc::clone(&shared);
            move || write_batches(&shared, output)
        })?;
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        WriterGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_batches<W: Write>(shared: &Shared, mut output: W) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.lines.is_empty() && !pending.closing {
            pending = shared
                .wake
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !pending.closing {
            drop(pending);
            std::thread::sleep(GATHER);
            pending = shared.lock();
        }
        std::mem::swap(&mut batch, &mut pending.lines);
        let dropped = std::mem::take(&mut pending.dropped);
        let closing = pending.closing;
        drop(pending);
        // Nothing sensible can be done when the output fails; the next batch tries again.
        let _ = output.write_all(&batch);
        if dropped > 0 {
            let _ = writeln!(
                output,
                "credbridge: {dropped} log lines were dropped because the log output was too slow"
            );
        }
        let _ = output.flush();
        batch.clear();
        if closing {
            return;
        }
    }
}

impl Write for BatchWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.lock();
        if pending.lines.len() + line.len() > MAX_PENDING {
            pending.dropped += 1;
            return Ok(line.len());
        }
        let was_empty = pending.lines.is_empty();
        pending.lines.extend_from_slice(line);
        drop(pending);
        if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'writer> MakeWriter<'writer> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'writer self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that keeps what it is given, optionally stalling on each write.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>, Option<Arc<Mutex<()>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if let Some(stall) = &self.1 {
                drop(stall.lock().unwrap());
            }
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_reaches_the_output_in_order_by_the_time_the_guard_is_dropped() {
        let output = Captured::default();
        let (writer, guard) = batch_writer(output.clone()).unwrap();
        for number in 0..10_000 {
            writer
                .make_writer()
                .write_all(format!("line {number}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let written = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..10_000).map(|n| format!("line {n}\n")).collect();
        assert_eq!(written, expected);
    }

    #[test]
    fn a_stalled_output_never_blocks_a_logging_thread_and_drops_are_counted() {
        let stall = Arc::new(Mutex::new(()));
        let output = Captured(Arc::default(), Some(Arc::clone(&stall)));
        let held = stall.lock().unwrap();
        let (writer, guard) = batch_writer(output.clone()).unwrap();
        let line = vec![b'x'; 1023];
        // Four times what may be pending: the logging thread returns every time, stall or
        // not. The writer holds at most one batch while stalled, and one more is pending.
        let total = 4 * MAX_PENDING / 1024;
        for _ in 0..total {
            let mut line = line.clone();
            line.push(b'\n');
            writer.make_writer().write_all(&line).unwrap();
        }
        drop(held);
        drop(guard);
        let written = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        let kept = written.lines().filter(|l| l.starts_with('x')).count();
        assert!(kept <= 2 * MAX_PENDING / 1024, "{kept} lines kept");
        // Each batch reports the drops counted up to it.
        let dropped: usize = written
            .lines()
            .filter(|l| l.contains("log lines were dropped"))
            .map(|note| {
                note.split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            })
            .sum();
        assert!(dropped > 0, "the drops are reported");
        assert_eq!(kept + dropped, total);
    }
}
