//! The README's first command as a newcomer runs it: in a clone of the repository with nothing
//! beside it (no shared folder next to the clone), `hack/demo.sh` explains itself and finds its default trace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("start the command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A clone of this repository's HEAD in an empty folder of its own, removed on drop.
struct Clone {
    parent: PathBuf,
    dir: PathBuf,
}

impl Clone {
    fn new() -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let parent =
            std::env::temp_dir().join(format!("skyfleet-fresh-clone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        std::fs::create_dir_all(&parent).unwrap();
        let dir = parent.join("skyfleet");
        run(Command::new("git")
            .args(["clone", "--quiet", "--no-hardlinks"])
            .arg(&repo)
            .arg(&dir));
        Clone { parent, dir }
    }

    fn demo(&self, args: &[&str]) -> Output {
        Command::new(self.dir.join("hack/demo.sh"))
            .args(args)
            .current_dir(&self.dir)
            .env_remove("SKYFLEET_DEMO_DIR")
            .output()
            .expect("start hack/demo.sh")
    }
}

impl Drop for Clone {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.parent);
    }
}

#[test]
fn the_demo_explains_itself_and_finds_its_trace_in_a_clone_with_nothing_beside_it() {
    let clone = Clone::new();
    let siblings: Vec<_> = std::fs::read_dir(&clone.parent).unwrap().collect();
    assert_eq!(siblings.len(), 1, "the clone must stand alone");

    let help = clone.demo(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{text}");
    assert!(
        text.contains("--trace NAME|FILE") && text.contains("--dry-run"),
        "{text}"
    );

    // The default trace, and a named one, resolve inside the clone and are read whole.
    let dry = clone.demo(&["--dry-run"]);
    let (out, err) = (
        String::from_utf8_lossy(&dry.stdout),
        String::from_utf8_lossy(&dry.stderr),
    );
    assert!(dry.status.success(), "{out}\n{err}");
    let taxi = clone.dir.join("traces/nyc_taxi.csv");
    assert!(
        out.contains(&format!("{}: one sample every 1800s", taxi.display())),
        "{out}"
    );
    assert!(out.contains("96 ticks (2 days)"), "{out}");

    let named = clone.demo(&[
        "--dry-run",
        "--trace",
        "ec2_cpu_utilization_825cc2",
        "--days",
        "1",
    ]);
    let out = String::from_utf8_lossy(&named.stdout);
    assert!(named.status.success(), "{out}");
    assert!(
        out.contains("traces/ec2_cpu_utilization_825cc2.csv: one sample every 300s"),
        "{out}"
    );

    // An unknown name is refused with the names that do exist.
    let bad = clone.demo(&["--dry-run", "--trace", "no-such-trace"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("no trace no-such-trace") && err.contains("nyc_taxi"),
        "{err}"
    );

    // The licence travels with the traces.
    assert!(clone.dir.join("traces/LICENSE-NAB.txt").is_file());
}
