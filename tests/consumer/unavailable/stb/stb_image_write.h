// Stands in for <stb/stb_image_write.h> on the include path of the consumer that links only
// minidl::core: a core header that includes it fails to compile.
#error "minidl::core must not need <stb/stb_image_write.h>"
