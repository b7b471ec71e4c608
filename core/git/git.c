/* Projects and their mirrors (git.h). */
#include "git.h"

#include <string.h>

const ferry_project *ferry_git_project(const ferryd *d, const char *name)
{
    for (size_t i = 0; i < d->cfg.n_projects; i++)
        if (strcmp(d->cfg.projects[i].name, name) == 0)
            return &d->cfg.projects[i];
    return NULL;
}
