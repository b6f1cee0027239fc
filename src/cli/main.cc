#include <cstdio>

int main() {
  std::puts("earshot 0.1.0");
  return 0;
}
