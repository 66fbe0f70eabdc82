/* fat_format.h - the FAT32 on-disk records gen2prep writes and reads
 * (fat32.c), as "Microsoft Extensible Firmware Initiative FAT32 File System
 * Specification" version 1.03 (fatgen103) names them; section names given.
 * All fields little-endian. doc/formats.md, FAT32 ESP.
 */
#ifndef GEN2PREP_FAT_FORMAT_H
#define GEN2PREP_FAT_FORMAT_H

#include <stdint.h>
#include "ondisk.h"

/* "Boot Sector and BPB Structure" and "FAT32 Structure Starting at Offset
 * 36": the first 512 bytes of the volume (and of its backup copy). */
struct fat32_boot_sector {
	uint8_t jmp_boot[3];            /* EB xx 90 or E9 xx xx */
	uint8_t oem_name[8];
	le16 bytes_per_sector;          /* BPB_BytsPerSec */
	uint8_t sectors_per_cluster;    /* BPB_SecPerClus */
	le16 reserved_sectors;          /* BPB_RsvdSecCnt */
	uint8_t num_fats;               /* BPB_NumFATs */
	le16 root_entry_count;          /* BPB_RootEntCnt: 0 on FAT32 */
	le16 total_sectors16;           /* BPB_TotSec16: 0 on FAT32 */
	uint8_t media;                  /* BPB_Media */
	le16 fat_size16;                /* BPB_FATSz16: 0 on FAT32 */
	le16 sectors_per_track;         /* BPB_SecPerTrk */
	le16 num_heads;                 /* BPB_NumHeads */
	le32 hidden_sectors;            /* BPB_HiddSec */
	le32 total_sectors32;           /* BPB_TotSec32 */
	le32 fat_size32;                /* BPB_FATSz32 (offset 36) */
	le16 ext_flags;                 /* BPB_ExtFlags: bit 7 = one active FAT (bits 0-3) */
	le16 fs_version;                /* BPB_FSVer */
	le32 root_cluster;              /* BPB_RootClus */
	le16 fs_info;                   /* BPB_FSInfo */
	le16 backup_boot_sector;        /* BPB_BkBootSec */
	uint8_t reserved[12];
	uint8_t drive_number;           /* BS_DrvNum */
	uint8_t reserved1;
	uint8_t boot_signature;         /* BS_BootSig: 0x29 = the next three exist */
	le32 volume_id;                 /* BS_VolID */
	uint8_t volume_label[11];       /* BS_VolLab */
	uint8_t fs_type[8];             /* BS_FilSysType "FAT32   " (informative) */
	uint8_t boot_code[420];
	uint8_t signature[2];           /* 0x55 0xAA at 510 */
} ONDISK;
_Static_assert(sizeof(struct fat32_boot_sector) == 512, "fatgen103 Boot Sector and BPB Structure");
_Static_assert(__builtin_offsetof(struct fat32_boot_sector, fat_size32) == 36, "fatgen103 FAT32 offset 36");
_Static_assert(__builtin_offsetof(struct fat32_boot_sector, fs_type) == 82, "fatgen103 BS_FilSysType");

/* BS_FilSysType of FAT12/16 volumes, where the FAT32 fields of offset 36
 * on are not: "FAT12   " / "FAT16   " at 54 ("FAT12 and FAT16 Structure
 * Starting at Offset 36"). */
#define FAT16_FS_TYPE_OFF 54

/* "FAT32 FSInfo Sector Structure and Backup Boot Sector" */
struct fat32_fsinfo {
	le32 lead_sig;                  /* FSI_LeadSig 0x41615252 */
	uint8_t reserved1[480];
	le32 struc_sig;                 /* FSI_StrucSig 0x61417272 */
	le32 free_count;                /* FSI_Free_Count, 0xFFFFFFFF unknown */
	le32 next_free;                 /* FSI_Nxt_Free, 0xFFFFFFFF unknown */
	uint8_t reserved2[12];
	le32 trail_sig;                 /* FSI_TrailSig 0xAA550000 */
} ONDISK;
_Static_assert(sizeof(struct fat32_fsinfo) == 512, "fatgen103 FSInfo");

#define FSI_LEAD_SIG  0x41615252u
#define FSI_STRUC_SIG 0x61417272u
#define FSI_TRAIL_SIG 0xAA550000u

/* "FAT Directory Structure": a short (8.3) entry. */
struct fat_dir_record {
	uint8_t name[11];               /* DIR_Name, space padded; 0xE5 deleted, 0 end */
	uint8_t attr;                   /* DIR_Attr */
	uint8_t nt_res;                 /* DIR_NTRes */
	uint8_t crt_time_tenth;         /* DIR_CrtTimeTenth */
	le16 crt_time;                  /* DIR_CrtTime */
	le16 crt_date;                  /* DIR_CrtDate */
	le16 lst_acc_date;              /* DIR_LstAccDate */
	le16 fst_clus_hi;               /* DIR_FstClusHI */
	le16 wrt_time;                  /* DIR_WrtTime */
	le16 wrt_date;                  /* DIR_WrtDate */
	le16 fst_clus_lo;               /* DIR_FstClusLO */
	le32 file_size;                 /* DIR_FileSize */
} ONDISK;
_Static_assert(sizeof(struct fat_dir_record) == 32, "fatgen103 FAT Directory Structure");

/* "Long Directory Entries": 13 UTF-16 units of the name in three pieces,
 * before the short entry they belong to, last piece first. */
struct fat_lfn_record {
	uint8_t ord;                    /* LDIR_Ord, | 0x40 on the last piece */
	le16 name1[5];                  /* LDIR_Name1 */
	uint8_t attr;                   /* LDIR_Attr = ATTR_LONG_NAME 0x0F */
	uint8_t type;                   /* LDIR_Type 0 */
	uint8_t chksum;                 /* LDIR_Chksum of the short name */
	le16 name2[6];                  /* LDIR_Name2 */
	le16 fst_clus_lo;               /* LDIR_FstClusLO 0 */
	le16 name3[2];                  /* LDIR_Name3 */
} ONDISK;
_Static_assert(sizeof(struct fat_lfn_record) == 32, "fatgen103 Long Directory Entries");

/* The c-th (0..12) UTF-16 unit of a long-name piece. */
static inline le16 *fat_lfn_unit(struct fat_lfn_record *r, int c)
{
	return c < 5 ? &r->name1[c] : c < 11 ? &r->name2[c - 5] : &r->name3[c - 11];
}

#endif
