// launch/cli.h: the `crucible` command line (subcommands, --help, --version).
#pragma once

namespace crucible::launch {

// Runs the command; returns the process exit code. Initializes MPI when launched
// under mpirun/srun, and prints errors (crucible::Error) as one clear line.
int run_cli(int argc, char** argv);

}  // namespace crucible::launch
