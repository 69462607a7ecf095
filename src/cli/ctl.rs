//! `nasp-tui ctl RUN_DIR pause|resume|checkpoint|export|stop [--wait SECONDS]`: steer a run from
//! a script or another terminal (or node) through its command inbox.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::exit;
use crate::rundir::events::{EVENTS_FILE, EventReader};
use crate::rundir::inbox::{self, Verb};
use crate::rundir::listing::is_run_dir;
use crate::rundir::status::{Status, unix_now};
use crate::rundir::{printable, printable_path};

#[derive(Args)]
pub struct CtlArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// pause, resume, checkpoint, export or stop (stop saves a checkpoint first).
    command: String,
    /// Wait up to this many seconds for the run to acknowledge the command.
    #[arg(long, value_name = "SECONDS")]
    wait: Option<f64>,
}

/// How often the event log and status are polled while waiting.
const POLL: Duration = Duration::from_millis(200);

/// The live owner's status, or the reason there is none.
fn live_owner(a: &CtlArgs) -> Result<Status, String> {
    let dir = printable_path(&a.run_dir);
    match Status::read(&a.run_dir) {
        Ok(Some(s)) if s.owner_alive(unix_now()) => Ok(s),
        Ok(Some(s)) => Err(format!(
            "no live process owns {dir} (its status says {} since pid {} on {})",
            s.shown(unix_now()).label(),
            s.pid,
            printable(&s.host)
        )),
        Ok(None) => Err(format!(
            "no live process owns {dir} (it has no status.json)"
        )),
        Err(e) => Err(printable(&e.to_string())),
    }
}

pub fn run(a: &CtlArgs) -> Result<i32, CliError> {
    let verb = Verb::parse(&a.command).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown command {:?}: use pause, resume, checkpoint, export or stop",
            a.command
        ))
    })?;
    if a.wait.is_some_and(|w| !(w >= 0.0 && w.is_finite())) {
        return Err(CliError::Usage("--wait: give a number of seconds".into()));
    }
    if !is_run_dir(&a.run_dir) {
        return Err(CliError::Usage(format!(
            "{} is not a run directory (no status.json or config.toml)",
            printable_path(&a.run_dir)
        )));
    }
    if let Err(why) = live_owner(a) {
        return Err(CliError::Failed(format!("{why}; nothing sent")));
    }
    // Acknowledgements written from now on are the ones that can answer this command.
    let mut log = EventReader::new(&a.run_dir.join(EVENTS_FILE));
    let _ = log.read_all::<serde_json::Value>();
    let id = inbox::send(&a.run_dir, verb).map_err(|e| {
        CliError::Failed(format!(
            "cannot write into {}/commands: {e}",
            printable_path(&a.run_dir)
        ))
    })?;
    let Some(wait) = a.wait else {
        println!("sent {} ({id})", verb.name());
        return Ok(exit::OK);
    };
    // A wait too long for the clock (`--wait 1e300`) waits for ever.
    let deadline = Duration::try_from_secs_f64(wait)
        .ok()
        .and_then(|d| Instant::now().checked_add(d));
    loop {
        let batch = log.poll::<serde_json::Value>();
        if batch.records.iter().any(|r| acknowledges(&r.event, &id)) {
            println!("{} acknowledged ({id})", verb.name());
            return Ok(exit::OK);
        }
        if batch.records.is_empty() {
            if let Err(why) = live_owner(a) {
                return Err(CliError::Failed(format!(
                    "{why}; the command was not acknowledged"
                )));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let said = withdraw(a, verb, &id, wait, &mut log).map_err(CliError::Failed)?;
                println!("{said}");
                return Ok(exit::OK);
            }
            std::thread::sleep(POLL);
        }
    }
}

/// What `ctl` says when the run did not acknowledge command `id` in time: the command is
/// withdrawn from the inbox (so that it cannot fire later, in this run or a resumed one), or,
/// when the run took it meanwhile, that it did (acknowledged at the last moment, or being acted
/// on). `Ok`: it was acknowledged after all.
fn withdraw(
    a: &CtlArgs,
    verb: Verb,
    id: &str,
    wait: f64,
    log: &mut EventReader,
) -> Result<String, String> {
    let late = format!("no acknowledgement of {} within {wait} s", verb.name());
    match inbox::withdraw(&a.run_dir, id) {
        Ok(true) => Err(format!(
            "{late} (the run may be busy: a long validation or checkpoint); the command was withdrawn and will not run: send it again, with a longer --wait"
        )),
        Ok(false) => {
            let acked = log
                .read_all::<serde_json::Value>()
                .records
                .iter()
                .any(|r| acknowledges(&r.event, id));
            if acked {
                Ok(format!("{} acknowledged ({id})", verb.name()))
            } else {
                Err(format!(
                    "{late}; the run has taken it meanwhile and will act on it (watch it with `nasp-tui watch {}`)",
                    printable_path(&a.run_dir)
                ))
            }
        }
        Err(e) => Err(format!(
            "{late}, and it cannot be withdrawn ({e}): it stays queued; remove {}/commands/{id}.json to withdraw it",
            printable_path(&a.run_dir)
        )),
    }
}

/// Whether an event (as JSON) acknowledges command `id`.
fn acknowledges(event: &serde_json::Value, id: &str) -> bool {
    event
        .get("Acknowledged")
        .and_then(|a| a.get("id"))
        .and_then(serde_json::Value::as_str)
        == Some(id)
}
