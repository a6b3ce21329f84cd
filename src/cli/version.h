#ifndef CG_CLI_VERSION_H
#define CG_CLI_VERSION_H
#define CLAWGRID_VERSION "0.1.0"
#endif
