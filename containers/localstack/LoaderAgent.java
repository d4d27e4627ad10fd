import java.lang.instrument.Instrumentation;

/**
 * Stands in for the agent LocalStack starts DynamoDB Local with (ddb-local-loader, which it
 * downloads, and which patches DynamoDB Local to allow more than 20 global secondary
 * indexes). Brain2's table has three, so an agent that changes nothing serves, and the
 * image builds without reaching beyond the package registries.
 */
public final class LoaderAgent {
    private LoaderAgent() {}

    public static void premain(String arguments, Instrumentation instrumentation) {}
}
