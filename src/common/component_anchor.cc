// Linked into every component library so that a component whose folder is
// still being filled in remains a valid (empty) static library.
namespace earshot::internal {
[[maybe_unused]] static const int kComponentAnchor = 0;
}  // namespace earshot::internal
