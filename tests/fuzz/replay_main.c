/* Replays a libFuzzer target's seed corpus without libFuzzer, so `make test` (and `make asan`) run every
 * parser over every seed. Usage: replay DIR|FILE... */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *buf = malloc(n ? n : 1);
	size_t off = 0;
	while (buf && off < n) {
		ssize_t r = read(fd, buf + off, n - off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	if (!buf)
		return -1;
	LLVMFuzzerTestOneInput(buf, off);
	free(buf);
	return 1;
}

int main(int argc, char **argv)
{
	int count = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		if (!d) {
			if (run_file(argv[i]) > 0)
				count++;
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char p[4096];
			snprintf(p, sizeof p, "%s/%s", argv[i], de->d_name);
			if (run_file(p) > 0)
				count++;
		}
		closedir(d);
	}
	/* An empty corpus is a defect: the target would be replayed over nothing. */
	printf("replayed %d inputs\n", count);
	return count > 0 ? 0 : 1;
}
