/* progress.h - how long-running work reports progress. The library never
 * prints: it calls this; the CLI draws a bar on a TTY (src/output.c). */
#ifndef GEN2PREP_PROGRESS_H
#define GEN2PREP_PROGRESS_H
#include <stdint.h>

struct progress {
	/* phase: short text ("writing output"); done/total in bytes. */
	void (*update)(void *ctx, const char *phase, uint64_t done, uint64_t total);
	void *ctx;
};

static inline void progress_update(const struct progress *p, const char *phase, uint64_t done, uint64_t total)
{
	if (p && p->update) p->update(p->ctx, phase, done, total);
}

#endif
