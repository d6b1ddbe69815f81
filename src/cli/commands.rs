//! The subcommands, each with its help: what it does, examples and exit codes. The help texts
//! are long; the flags they take are in `shared_args.rs` and `command_args.rs`.

use clap::Subcommand;

use super::{
    CheckArgs, CompletionsArgs, DownArgs, EvalArgs, GraphArgs, IexArgs, InitArgs, PlanArgs,
    RunArgs, StatusArgs, UpArgs,
};

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ship the project's applications to the hosts, start them as `mix run` does, and call
    /// ENTRY with the arguments after `--`; or run a script FILE.exs there, as `mix run FILE
    /// ARGS` would.
    #[command(after_help = "Examples:\n  \
        mix-remote run MyApp.Worker.process --host deploy@db-1 -- 42 '\"batch-7\"'\n  \
        mix-remote run :my_erl_mod.check --host ops@10.0.0.5 --env prod\n  \
        mix-remote run MyApp.Release.migrate --host deploy@db-1 --env prod --no-start\n  \
        mix-remote run MyApp.Smoke.check --group web --expect ok --parallel 4\n  \
        mix-remote run --group web --json    # entry from mix-remote.yaml\n  \
        mix-remote run priv/repo/seeds.exs --host db-1 -- --dry-run\n  \
        echo y | mix-remote run MyApp.Fix.run --host db-1    # IO.gets reads stdin\n\n\
        Exit codes: 0 returned, 1 the function raised/threw/exited (or, with --expect ok,\n\
        returned something else, or an application did not start), 2 bad input, 3 could not\n\
        connect, boot or load, 4 timeout, 130 interrupted. With several hosts: the highest\n\
        code of any host.")]
    Run(RunArgs),
    /// Evaluate an Elixir expression on the hosts with the project's code, and print its value.
    #[command(after_help = "Examples:\n  \
        mix-remote eval 'MyApp.Repo.aggregate(MyApp.User, :count)' --host db-1\n  \
        mix-remote eval 'Application.spec(:my_app, :vsn)' --group web\n\n\
        The project's modules the expression names are pushed (with what they need); add\n\
        --include for modules it reaches only through names built at run time.\n\
        Exit codes: as for run.")]
    Eval(EvalArgs),
    /// An interactive IEx session on one host's throw-away node, with the project's applications
    /// shipped and started as for `run`.
    #[command(after_help = "Examples:\n  \
        mix-remote iex --host deploy@db-1\n  \
        mix-remote iex --host db-1 --env prod --no-start\n  \
        printf 'MyApp.Stats.count()\\n' | mix-remote iex --host db-1\n\n\
        The prompt names the project's application and the host: iex(my_app@db-1)1>.\n\
        Editing, history ($XDG_STATE_HOME/mix-remote/iex_history, else\n\
        ~/.local/state/mix-remote/iex_history) and Tab completion are local, by IEx's own rules;\n\
        evaluation is on the server. Ctrl-C cancels the line being typed, drops an unfinished\n\
        expression, or interrupts an evaluation; pressed twice at an empty prompt, or before IEx\n\
        runs, or with Ctrl-D or System.halt(), it ends the session, and the node goes with\n\
        everything it had on the server. Not on a terminal, lines are read from stdin as IEx asks\n\
        for them.\n\
        Exit codes: 0 the session ended, 1 an application did not start, 2 bad input, 3 could\n\
        not connect, boot or load, 4 timeout, 130 interrupted.")]
    Iex(IexArgs),
    /// Show what `run` would push for ENTRY (or a script, FILE.exs), in push order, with sizes
    /// and why each module is needed. Compiles and reads the build only: no SSH, no server.
    #[command(after_help = "Examples:\n  \
        mix-remote plan MyApp.Worker.process\n  \
        mix-remote plan priv/repo/seeds.exs\n  \
        mix-remote plan      # the entry of mix-remote.yaml\n  \
        mix-remote plan MyApp.Worker.process --include MyApp.Notifiers.Slack --json | jq .module")]
    Plan(PlanArgs),
    /// Print the project's module dependency graph (or the closure of ENTRY or of a script,
    /// FILE.exs) as Graphviz DOT or JSON.
    #[command(after_help = "Examples:\n  \
        mix-remote graph | dot -Tsvg > graph.svg\n  \
        mix-remote graph MyApp.Worker.process --format json")]
    Graph(GraphArgs),
    /// Preflight: can `run` work on these hosts? Runs nothing of the project.
    #[command(after_help = "Examples:\n  \
        mix-remote check --host deploy@db-1\n  \
        mix-remote check --group web --json\n\n\
        Checks per host: SSH reachable and login works, host key known, the reverse\n\
        forward allowed, elixir found, and its OTP and Elixir versions; whether the server\n\
        can run the local build (BUILD LOADS: its OTP loads the modules, it has the\n\
        applications they name, its machine loads their native code), whether it has a\n\
        directory a run can write its files in (TEMP DIR), and how many directories killed\n\
        runs left there (STALE RUNS).\n\
        Exit codes: 0 every host is ready, 2 bad input, 3 some host is not ready,\n\
        130 interrupted.")]
    Check(CheckArgs),
    /// Start a warm session for the hosts: keeps the SSH connection and a spare node booted
    /// ahead, so that the next `run`, `eval` or `iex` there starts at once (each still gets a
    /// fresh node of its own).
    #[command(after_help = "Examples:\n  \
        mix-remote up --host deploy@db-1\n  \
        mix-remote up --host db-1 --idle 1h\n\n\
        A run uses the session of its host when it reaches the host with the same address,\n\
        ssh config, ssh options and elixir; otherwise it connects as usual (-v says why).\n\
        The session ends with `mix-remote down`, after --idle without a run, or when its\n\
        connection drops; it leaves nothing behind on either side. Only your user can use it.\n\
        `up` returns once the session's first spare node is ready. On a session already up,\n\
        --idle sets its limit anew, counted from then.\n\
        Exit codes: 0 the sessions are up (or already were), 2 bad input, 3 a host could not\n\
        connect or boot its spare node (the other hosts still get theirs), 4 --connect-timeout\n\
        or --boot-timeout reached (no session is left then).")]
    Up(UpArgs),
    /// End warm sessions, waiting until nothing of them is left on either side.
    #[command(after_help = "Examples:\n  \
        mix-remote down --host deploy@db-1\n  \
        mix-remote down --all")]
    Down(DownArgs),
    /// List the warm sessions: host, the settings it was made with, age, idle time left, runs
    /// served, the spare node's state.
    #[command(after_help = "Examples:\n  \
        mix-remote status\n  \
        mix-remote status --json")]
    Status(StatusArgs),
    /// Write a commented mix-remote.yaml and show (or append) a Makefile target.
    #[command(after_help = "Examples:\n  \
        mix-remote init --host deploy@web-1 --host deploy@web-2 --entry MyApp.Smoke.check\n  \
        mix-remote init --makefile          # also append the target to the project's Makefile\n  \
        mix-remote init --force             # overwrite an existing mix-remote.yaml")]
    Init(InitArgs),
    /// Print a shell completion script: commands, flags, and the project's functions, modules,
    /// hosts and groups (the script asks mix-remote for them on each TAB).
    #[command(after_help = "Examples:\n  \
        echo 'source <(mix-remote completions bash)' >> ~/.bashrc\n  \
        echo 'source <(mix-remote completions zsh)' >> ~/.zshrc\n  \
        mix-remote completions fish > ~/.config/fish/completions/mix-remote.fish")]
    Completions(CompletionsArgs),
}
