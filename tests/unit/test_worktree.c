/* cli/worktree.c: which remote URLs name a project's repository (and which
 * do not), and a real working copy made with the git CLI: HEAD, remotes,
 * the count of files changed since HEAD, files of a commit, commits found
 * by sha prefix and tag but not by branch. */
#include "test.h"
#include "git_fixture.h" /* R, sh(), sh_out() */

#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "worktree.h"

static void same(const char *a, const char *b, int want)
{
    int got = ferry_url_same_repository(a, b);
    if (got != want) {
        char *na = ferry_url_normalise(a), *nb = ferry_url_normalise(b);
        fprintf(stderr, "same(%s, %s) == %d, expected %d (%s vs %s)\n", a, b, got, want, na, nb);
        free(na);
        free(nb);
        ferry_test_failures++;
    }
}

static void test_urls(void)
{
    const char *https = "https://git.example.com/ml/mnist.git";
    same(https, "https://git.example.com/ml/mnist", 1);
    same(https, "https://git.example.com/ml/mnist/", 1);
    same(https, "https://git.example.com/ml/mnist.git/", 1);
    same(https, "https://alice:s3cret@git.example.com/ml/mnist.git", 1);
    same(https, "https://token@git.example.com/ml/mnist", 1);
    same(https, "HTTPS://Git.Example.COM/ml/mnist.git", 1);
    same(https, "https://git.example.com:443/ml/mnist.git", 1);
    /* ssh and scp-like, with or without the user, default port or not */
    same("git@git.example.com:ml/mnist.git", "ssh://git@git.example.com/ml/mnist.git", 1);
    same("git@git.example.com:ml/mnist.git", "ssh://git.example.com:22/ml/mnist", 1);
    same("git@git.example.com:ml/mnist.git", "git+ssh://deploy@git.example.com/ml/mnist", 1);
    same("me@10.0.0.2:/srv/git/mnist.git", "ssh://me@10.0.0.2:22/srv/git/mnist.git", 1);
    same("ssh://git@[::1]:22/ml/mnist.git", "ssh://[::1]/ml/mnist", 1);
    same("git://127.0.0.1:9418/mnist.git", "git://127.0.0.1/mnist", 1);
    same("file:///srv/git/mnist.git", "/srv/git/mnist.git", 1);
    same("file:///srv/git/mnist.git", "/srv/git/mnist.git/", 1);

    /* not the same server, or not the same repository */
    same(https, "git://git.example.com/ml/mnist.git", 0);
    same(https, "ssh://git@git.example.com/ml/mnist.git", 0);
    same(https, "http://git.example.com/ml/mnist.git", 0);
    same(https, "https://git.example.com:8443/ml/mnist.git", 0);
    same(https, "https://git.example.org/ml/mnist.git", 0);
    same(https, "https://git.example.com/ml/MNIST.git", 0);
    same(https, "https://git.example.com/ml/mnist2.git", 0);
    same(https, "https://git.example.com/mnist.git", 0);
    same("git@git.example.com:ml/mnist.git", "git@git.example.com:ml/cifar.git", 0);
    same("ssh://git@git.example.com:2222/ml/mnist", "git@git.example.com:ml/mnist", 0);
    same("git://127.0.0.1:9419/mnist.git", "git://127.0.0.1/mnist.git", 0);
    same("/srv/git/mnist.git", "/srv/git/other.git", 0);
    same(https, NULL, 0);

    char *n = ferry_url_normalise("https://alice:pw@GIT.example.com:443/ml/mnist.git/");
    CHECK_STR(n, "https://git.example.com/ml/mnist");
    free(n);
    n = ferry_url_normalise("git@host:ml/mnist.git");
    CHECK_STR(n, "ssh://host/ml/mnist");
    free(n);
}

static void test_not_a_working_copy(void)
{
    ferry_worktree *wt = NULL;
    char *plain = ferry_asprintf("%s/../plain", R);
    CHECK_INT(sh("mkdir -p ../plain"), 0);
    /* (/tmp is no working copy: nothing above the test's folder is found.) */
    CHECK_INT(ferry_worktree_open(plain, &wt), FERRY_ENOENT);
    CHECK(wt == NULL);
    free(plain);
}

static void test_working_copy(void)
{
    CHECK_INT(
        sh("git init -q -b main . && printf 'train: 1\\n' > ferry.yaml && mkdir src && "
           "echo a > src/a.py && echo b > src/b.py && printf 'ignored/\\n*.log\\n' > .gitignore && "
           "git add -A && git commit -q -m 'Fix the loss' && git tag v1.0 && "
           "git remote add origin https://git.example.com/ml/mnist.git && "
           "git remote add fork git@host:me/mnist.git"),
        0);
    char head[128], *out = sh_out("git rev-parse HEAD");
    snprintf(head, sizeof(head), "%s", out);
    free(out);

    ferry_worktree *wt = NULL;
    char *sub = ferry_asprintf("%s/src", R);
    CHECK_INT(ferry_worktree_open(sub, &wt), 0); /* found from a folder inside */
    free(sub);
    if (wt == NULL)
        return;
    CHECK_STR(ferry_worktree_head(wt), head);
    CHECK_INT(ferry_worktree_n_remotes(wt), 2);
    int found = 0;
    for (size_t i = 0; i < ferry_worktree_n_remotes(wt); i++)
        found += strcmp(ferry_worktree_remote(wt, i), "https://git.example.com/ml/mnist.git") == 0;
    CHECK_INT(found, 1);
    CHECK_INT(ferry_worktree_changed(wt), 0);

    /* modified, staged new, deleted, untracked in a new folder (two files);
     * ignored ones do not count */
    CHECK_INT(sh("echo b >> src/a.py && rm src/b.py && echo n > new.py && git add new.py && "
                 "mkdir -p more ignored && echo 1 > more/x && echo 2 > more/y && "
                 "echo 3 > ignored/z && echo 4 > run.log"),
              0);
    CHECK_INT(ferry_worktree_changed(wt), 5);
    /* staged and then changed again: still one file */
    CHECK_INT(sh("git add src/a.py && echo c >> src/a.py"), 0);
    CHECK_INT(ferry_worktree_changed(wt), 5);

    char *buf = NULL;
    size_t len = 0;
    CHECK_INT(ferry_worktree_read_file(wt, head, "ferry.yaml", &buf, &len), 0);
    CHECK_STR(buf, "train: 1\n");
    CHECK_INT(len, 9);
    free(buf);
    CHECK_INT(ferry_worktree_read_file(wt, head, "valohai.yaml", &buf, &len), FERRY_ENOENT);
    CHECK_INT(ferry_worktree_read_file(wt, head, "src", &buf, &len), FERRY_ENOENT);
    CHECK_INT(ferry_worktree_read_file(wt, "0123456789012345678901234567890123456789", "ferry.yaml",
                                       &buf, &len),
              FERRY_EINVAL);
    CHECK(buf == NULL);

    char sha[41] = "";
    char prefix[8];
    snprintf(prefix, sizeof(prefix), "%.7s", head);
    CHECK_INT(ferry_worktree_find_commit(wt, prefix, sha), 0);
    CHECK_STR(sha, head);
    CHECK_INT(ferry_worktree_find_commit(wt, head, sha), 0);
    CHECK_INT(ferry_worktree_find_commit(wt, "v1.0", sha), 0);
    CHECK_STR(sha, head);
    /* a branch is the server's to resolve */
    CHECK_INT(ferry_worktree_find_commit(wt, "main", sha), FERRY_ENOENT);
    CHECK_INT(ferry_worktree_find_commit(wt, "deadbeefdeadbeef", sha), FERRY_ENOENT);
    CHECK_INT(ferry_worktree_find_commit(wt, "nope", sha), FERRY_ENOENT);
    ferry_worktree_free(wt);

    /* a repository without a commit yet: no HEAD */
    CHECK_INT(sh("mkdir -p ../fresh && cd ../fresh && git init -q ."), 0);
    char *fresh = ferry_asprintf("%s/../fresh", R);
    CHECK_INT(ferry_worktree_open(fresh, &wt), 0);
    if (wt != NULL)
        CHECK(ferry_worktree_head(wt) == NULL);
    ferry_worktree_free(wt);
    free(fresh);
}

int main(void)
{
    char tmpl[] = "/tmp/ferry-test-worktree-XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        return 1;
    snprintf(R, sizeof(R), "%s/repo", tmpl);
    if (mkdir(R, 0755) != 0)
        return 1;
    test_urls();
    test_not_a_working_copy();
    test_working_copy();
    char *rm = ferry_asprintf("rm -rf %s", tmpl);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", tmpl);
    free(rm);
    TEST_MAIN_END();
}
