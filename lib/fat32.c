/* fat32.c - placeholder until the writer lands (owner: esp). */
#include "fat32.h"
