//! Records the git commit the `ordo` binary is built from, so `ordo bench`
//! reports it wherever it runs.

fn main() {
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/index");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .is_some_and(|out| !out.stdout.is_empty());
    if let Some(commit) = commit {
        let suffix = if dirty { "-dirty" } else { "" };
        println!("cargo:rustc-env=ORDO_GIT_COMMIT={commit}{suffix}");
    }
}
