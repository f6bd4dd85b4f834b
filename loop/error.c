/* corio_strerror / corio_err_name from the one X-macro table in error.h. */
#include <errno.h>
#include <string.h>
#include "internal.h"

const char *corio_strerror(int err)
{
  const char *s;
  switch (err) {
#define CORIO__ERR_MSG(name, value, msg)                                                           \
  case value:                                                                                      \
    return msg;
    CORIO_ERRORS(CORIO__ERR_MSG)
#undef CORIO__ERR_MSG
  default:
    break;
  }
  if (err == 0) return "success";
  /* strerrordesc_np is thread-safe and never formats into a shared buffer (unlike strerror). */
  s = err < 0 ? strerrordesc_np(-err) : NULL;
  return s ? s : "unknown error";
}

const char *corio_err_name(int err)
{
  const char *s;
  switch (err) {
#define CORIO__ERR_NAME(name, value, msg)                                                          \
  case value:                                                                                      \
    return "CORIO_E_" #name;
    CORIO_ERRORS(CORIO__ERR_NAME)
#undef CORIO__ERR_NAME
  default:
    break;
  }
  if (err == 0) return "OK";
  s = err < 0 ? strerrorname_np(-err) : NULL;
  return s ? s : "UNKNOWN";
}
