package io.qsup.cli;

import picocli.CommandLine.Option;

/** {@code --json} for the verbs whose output is data; also given before the verb (see {@link QsupMain}). */
final class JsonOption {
    @Option(names = "--json", description = "Print stable JSON objects instead of human text.")
    boolean json;
}
