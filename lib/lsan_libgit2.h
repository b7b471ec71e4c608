/* LeakSanitizer's suppressions for what libgit2 1.5 (Debian's 1.5.1) keeps
 * past a program's end and nothing of ferry can free (ASan builds only).
 * Include this file in exactly one source file of each program that links
 * libgit2: it defines the hook LeakSanitizer calls for a program's own
 * suppressions. The rest of libgit2 is still checked.
 * - libpcre2-8.so: libgit2 leaks the pcre2 match data of every regex search
 *   that does not match (git_regexp_search returns before
 *   pcre2_match_data_free; fixed upstream in libgit2 PR #6382, 1.6), which
 *   its config lookups run on every remote it opens.
 * - git_error_set, git_error_clear: the per-thread state libgit2 makes on
 *   the first error a thread sees, freed by a thread-specific destructor
 *   when the thread exits; ferryd's git work runs on libuv's thread pool,
 *   whose threads are still there when LeakSanitizer looks. */
#ifndef FERRY_LSAN_LIBGIT2_H
#define FERRY_LSAN_LIBGIT2_H

#if defined(__SANITIZE_ADDRESS__)
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libpcre2-8.so\n"
           "leak:git_error_set\n"
           "leak:git_error_clear\n";
}
#endif

#endif
