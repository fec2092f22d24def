/*
 * spi_guard.c — SPI under a fixed search_path (spi_guard.h).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/guc.h"

#include "spi_guard.h"

int
spi_guard_connect(int options)
{
	int			level;

	if (SPI_connect_ext(options) != SPI_OK_CONNECT)
		elog(ERROR, "multiraft: SPI_connect failed");
	/* undone by spi_guard_finish, or by the transaction's abort */
	level = NewGUCNestLevel();
	(void) set_config_option("search_path", MULTIRAFT_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
spi_guard_finish(int nest_level)
{
	AtEOXact_GUC(true, nest_level);
	SPI_finish();
}
