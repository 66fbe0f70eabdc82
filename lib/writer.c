/* writer.c - placeholder (owner: io). */
#include "writer.h"
void writer_cleanup_tmp(void) {}
