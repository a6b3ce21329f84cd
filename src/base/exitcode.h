/* exitcode — the process exit codes of `clawgrid` (documented in docs/cli.md and `clawgrid help`).
 *
 * They live in base/ because two layers return them: the CLI (layer 5) and the daemon's node_run() (layer 4),
 * which must not include the CLI's headers (dependencies point downward only).
 *   0 success; 1 the operation failed (the node or the command reported an error);
 *   2 usage error (unknown command, bad flags); 3 no node running / data directory not initialized;
 *   4 authentication refused (admin token missing or wrong). */
#ifndef CG_BASE_EXITCODE_H
#define CG_BASE_EXITCODE_H

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NONODE = 3, EXIT_AUTH = 4 };

#endif
