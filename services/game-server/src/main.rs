//! `game-server`: serves `rpc.Rpc` with health, reflection and drain.

fn main() -> std::process::ExitCode {
    game_server::main()
}
