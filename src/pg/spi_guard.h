/*
 * spi_guard.h — SPI for multiraft's C functions under a fixed search_path.
 *
 * The SQL these functions run names its tables with their schema, but an
 * operator or function written without one resolves through search_path, and
 * a user who can create objects in a schema on it can put one there that wins
 * (an int || text operator in public, say).  Whoever calls the function — a
 * superuser, a peer's link session — would run it.  So SPI runs with
 * search_path = pg_catalog, pg_temp for its duration (CVE-2018-1058's lesson).
 */
#ifndef MULTIRAFT_SPI_GUARD_H
#define MULTIRAFT_SPI_GUARD_H

/* SPI_connect_ext(options) and the fixed search_path; returns the GUC nest
 * level that spi_guard_finish() takes.  ERROR if SPI cannot connect. */
extern int	spi_guard_connect(int options);
/* SPI_finish() and the caller's search_path back. */
extern void spi_guard_finish(int nest_level);

/* The search_path every SPI use of multiraft runs under. */
#define MULTIRAFT_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

#endif
