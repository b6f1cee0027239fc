#include "cli/cli.h"

int main(int argc, char** argv) { return earshot::cli::RunCli(argc, argv); }
