#ifndef CG_CLI_VERSION_H
#define CG_CLI_VERSION_H
/* The version moved to base/version.h (lower layers report it too); kept for the CLI's includes. */
#include "base/version.h"
#endif
