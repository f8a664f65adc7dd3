package io.qsup.cli;

import java.io.PrintWriter;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * How {@code qsup} reports a wrong command line: one line naming the problem, one line pointing to the help of the
 * verb at fault, exit code 2. The full help is for {@code --help}, not for a typo.
 */
final class UsageError {
    private UsageError() {}

    static int print(ParameterException ex, String[] args) {
        CommandLine cl = ex.getCommandLine();
        CommandSpec spec = cl.getCommandSpec();
        PrintWriter err = cl.getErr();
        err.println(spec.qualifiedName() + ": " + problem(ex, spec));
        err.println("Try '" + spec.qualifiedName() + " --help' for "
                + (spec.parent() == null ? "the verbs and global options." : "its options and examples."));
        err.flush();
        return ExitCodes.USAGE;
    }

    private static String problem(ParameterException ex, CommandSpec spec) {
        if (!(ex instanceof UnmatchedArgumentException u)) {
            String m = ex.getMessage();
            // picocli's own messages start with a capital ("Missing required parameter"); ours do not
            return m.length() > 1 && Character.isUpperCase(m.charAt(0)) && Character.isLowerCase(m.charAt(1))
                    ? Character.toLowerCase(m.charAt(0)) + m.substring(1) : m;
        }
        List<String> unmatched = u.getUnmatched();
        String first = unmatched.isEmpty() ? "" : unmatched.get(0);
        String what;
        if (first.startsWith("-")) {
            what = "unknown option '" + first + "'";
        } else if (spec.parent() == null && !spec.subcommands().isEmpty()) {
            what = "unknown verb '" + first + "'";
        } else {
            what = "unexpected argument" + (unmatched.size() > 1 ? "s " : " ") + quoted(unmatched);
        }
        List<String> suggestions = u.getSuggestions();
        if (!suggestions.isEmpty()) {
            what += "; did you mean " + quoted(suggestions.subList(0, Math.min(3, suggestions.size()))) + "?";
        }
        return what;
    }

    private static String quoted(List<String> words) {
        StringBuilder s = new StringBuilder();
        for (String w : words) {
            s.append(s.isEmpty() ? "" : ", ").append('\'').append(w).append('\'');
        }
        return s.toString();
    }
}
