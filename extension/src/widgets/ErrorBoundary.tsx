import * as React from 'react';

export interface IErrorBoundaryProps {
  /** What this part shows, for the message ("the runs"). */
  part: string;
  children?: React.ReactNode;
}

interface IErrorBoundaryState {
  error: Error | null;
}

/**
 * Keeps an error in one part of a panel from blanking the rest: the part says what
 * went wrong and offers to try again (as it does by itself when its content
 * changes); everything around it keeps working.
 */
export class ErrorBoundary extends React.Component<
  IErrorBoundaryProps,
  IErrorBoundaryState
> {
  state: IErrorBoundaryState = { error: null };

  static getDerivedStateFromError(error: Error): IErrorBoundaryState {
    return { error };
  }

  componentDidCatch(error: Error): void {
    console.error(`kubelab: ${this.props.part} failed to render`, error);
  }

  componentDidUpdate(previous: IErrorBoundaryProps): void {
    // New content (the model changed): try it, it may well render now.
    if (this.state.error && previous.children !== this.props.children) {
      this.setState({ error: null });
    }
  }

  render(): React.ReactNode {
    const { error } = this.state;
    if (!error) {
      return this.props.children;
    }
    return (
      <div
        className="jp-kubelab-error"
        role="alert"
        data-testid="kubelab-part-error"
      >
        Could not show {this.props.part}: {error.message}{' '}
        <button
          className="jp-kubelab-link"
          onClick={() => this.setState({ error: null })}
        >
          Try again
        </button>
      </div>
    );
  }
}
