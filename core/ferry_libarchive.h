/* libarchive's <archive.h>, for the files that use libarchive directly.
 *
 * core/ is on the include path and holds ferry's own archive.h, which shadows
 * libarchive's header of the same name. This header is found through that same
 * include-path entry, so #include_next continues the search after core/ and
 * reaches the system's libarchive. Include it as <ferry_libarchive.h>. */
#ifndef FERRY_LIBARCHIVE_H
#define FERRY_LIBARCHIVE_H

#include_next <archive.h>

#endif
