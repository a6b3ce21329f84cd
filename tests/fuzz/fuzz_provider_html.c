/* libFuzzer target: text extraction of the fts search backend (HTML, Markdown, text) over folder files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provider/fts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char kinds[] = {'h', 'm', 't'};
	for (int i = 0; i < 3; i++) {
		char *title = NULL, *text = NULL;
		if (fts_extract(kinds[i], (const char *)data, size, &title, &text) == 0) {
			if (strlen(text) > size || strlen(title) > 4096)
				abort();
			free(title);
			free(text);
		}
	}
	return 0;
}
