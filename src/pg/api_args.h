/*
 * api_args.h — argument checks shared by the SQL functions of api_*.c.
 * Each raises the SPEC error (with SQLSTATE) for a bad value.
 */
#ifndef MULTIRAFT_API_ARGS_H
#define MULTIRAFT_API_ARGS_H

#include "fmgr.h"

#include "requests.h"
#include "status.h"

/* Create/remove group have no timeout argument: they wait this long. */
#define MR_ADMIN_TIMEOUT_MS 10000

/* ERROR "<name> must not be NULL" when argument n is NULL. */
extern void api_require_arg(FunctionCallInfo fcinfo, int n, const char *name);

extern int64 api_group_id_arg(FunctionCallInfo fcinfo, int n);

/* How every request function starts: multiraft.node_id must be set; *req is
 * zeroed, with this type and the group_id of argument 0. */
extern void api_request_init(FunctionCallInfo fcinfo, MultiraftRequestType type,
							 MultiraftRequest *req);
extern int32 api_node_id_arg(FunctionCallInfo fcinfo, int n, const char *name);
extern int32 api_timeout_arg(FunctionCallInfo fcinfo, int n);

/* command_id argument n into req (NULL: a fresh unique id). */
extern void api_command_id_arg(FunctionCallInfo fcinfo, int n, MultiraftRequest *req);

/* bytea argument n (NULL allowed when nullable: empty); checks max_command_size. */
extern bytea *api_payload_arg(FunctionCallInfo fcinfo, int n, const char *name, bool nullable);

/* ERROR "node <id> is not registered" unless multiraft.node has node_id. */
extern void api_require_registered(int32 node_id);

/* The published status of group_id; ERROR "group <id> does not exist" if none. */
extern void api_require_group(int64 group_id, MultiraftGroupStatus *out);

#endif
