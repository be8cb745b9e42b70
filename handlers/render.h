/* render.h — the platform's relation variables in a template, filled for one
 * profile:
 *   {relation.<short>.<side>.count}
 *   {relation.<short>.<side>.<p>.count}, {relation.<short>.<side>.<p>.total}
 *   {for $i $item = relation.<short>.<side>.<p>.top}...{$i} {$item.profile_id}
 *   {$item.value}...{else}...{end}
 * Every other text, other {...} included, passes through unchanged. */
#ifndef RELATIOND_RENDER_H
#define RELATIOND_RENDER_H

#include "config/config.h"
#include "lib/jsonbuf.h"
#include "handlers/trigger.h"

#include <stdbool.h>
#include <stddef.h>

/* The statistics of the profile's side of rel (NULL with err set when they
 * cannot be read); valid until the rendering ends. */
typedef const SideStats *(*RenderStats)(void *ctx, const RelationDef *rel, Side side, char *err,
                                        size_t errlen);

/* False with a message naming the variable that cannot be filled (unknown
 * relation, side or property, total without save_amount, a loop over a
 * property without save_top, top outside a loop, a loop without {end}), or
 * the reading error; *usage tells the first kind (exit 2) from the second. */
bool render_template(const Config *cfg, const char *text, size_t len, RenderStats stats,
                     void *ctx, JsonBuf *out, bool *usage, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
