// Package units parses and formats byte sizes for the whole program: every
// flag that takes a size (--max-size, --quota, --exclude-larger-than,
// --max-upload, …) and every size a command prints.
//
// Sizes are binary, as restic's: "K", "KB", "KiB" and "k" all mean 1024
// bytes, "G", "GB" and "GiB" all mean 2^30. A repository budget written as
// "500GB" therefore means the same as "500GiB"; nobody sizes a backup disk
// in powers of ten by accident and then loses 7% of it to a rounding rule.
// Output always uses the IEC names (KiB, MiB, GiB, …) so what is printed
// can be pasted back into a flag.
package units
