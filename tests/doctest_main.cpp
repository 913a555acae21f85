// doctest's main, shared by every test program, with one addition: a run whose filters select
// no test case fails. CTest runs each test file through a --source-file filter when the suite
// is built as one program (MINIDL_UNITY_TESTS), and a filter that matched nothing would
// otherwise pass without checking anything.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {

int selected_test_cases = -1;  // -1 until a run has ended

// Records how many test cases passed the filters; reports nothing itself.
struct SelectedTestCases : doctest::IReporter {
  explicit SelectedTestCases(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    selected_test_cases = static_cast<int>(stats.numTestCasesPassingFilters);
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

REGISTER_LISTENER("selected_test_cases", 1, SelectedTestCases);

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int status = context.run();
  if (context.shouldExit() || status != 0) return status;
  if (selected_test_cases == 0) {
    std::fprintf(stderr, "error: no test case matches the filters on the command line\n");
    return 1;
  }
  return 0;
}
