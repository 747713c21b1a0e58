//! `ranking`: serves `ranking.v1.Ranking` with health, reflection and drain.

fn main() -> std::process::ExitCode {
    ranking::main()
}
