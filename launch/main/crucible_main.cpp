// The `crucible` command: a short entry point; subcommands live in launch/.
#include "launch/cli.h"

int main(int argc, char** argv) { return crucible::launch::run_cli(argc, argv); }
