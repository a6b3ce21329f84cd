/* version — the clawgrid release, in base/ so that every layer (the daemon's node.info and /healthz, the
 * p2p identify agent, the CLI) reports the same string without depending on the CLI. */
#ifndef CG_BASE_VERSION_H
#define CG_BASE_VERSION_H
#define CLAWGRID_VERSION "0.1.0"
#endif
